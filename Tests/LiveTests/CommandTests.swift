import Foundation
import XCTest

/// The command as a user meets it: stuck warnings, stopping, filters, errors.
final class CommandTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  func testStuckWarningWhileStuckThenTracerExitWithSummary() throws {
    let port = Live.port(10)
    let before = finwaitProgramIDs()
    let finwait = try FinwaitProcess(["--json", "--port", String(port), "--stuck", "300ms"])
    let ours = finwaitProgramIDs().subtracting(before)
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 3_000)
    let truth = try driver.truth()
    // Stuck is reported while the connection is still in FIN_WAIT2.
    XCTAssertTrue(waitUntil(3) { finwait.stdout.text.contains("\"type\":\"stuck\"") }, finwait.stdout.text)
    XCTAssertTrue(driver.process.isRunning, "the warning came before the connection ended")
    kill(finwait.process.processIdentifier, SIGTERM)
    XCTAssertTrue(waitUntil(1) { !finwait.process.isRunning }, "exits within 1 s of SIGTERM")
    // The driver inherited finwait's pipes: output ends only once it is gone.
    kill(driver.process.processIdentifier, SIGKILL)
    XCTAssertEqual(try finwait.waitForExit(), 0)

    let records = try finwait.validatedRecords()
    let stuck = records.filter { $0["type"] as? String == "stuck" }
    XCTAssertEqual(stuck.count, 1, "reported once")
    XCTAssertEqual(stuck.first?["pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(stuck.first?["comm"] as? String, "fwdrive")
    XCTAssertEqual(stuck.first?["path"] as? String, "shutdown_wr")
    XCTAssertNil(stuck.first?["end"])
    XCTAssertGreaterThanOrEqual(stuck.first?["dwell_ns"] as? Int ?? 0, 300_000_000)
    // The local peer sitting in CLOSE_WAIT is named, with how long it has.
    XCTAssertEqual(stuck.first?["peer_pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(stuck.first?["peer_comm"] as? String, "fwdrive")
    XCTAssertEqual(stuck.first?["peer_closed"] as? Bool, false)
    XCTAssertGreaterThanOrEqual(stuck.first?["peer_close_wait_ns"] as? Int ?? 0, 300_000_000)

    let exit = records.filter { $0["type"] as? String == "fin_wait2" }
    XCTAssertEqual(exit.count, 1)
    XCTAssertEqual(exit.first?["end"] as? String, "tracer_exit")
    XCTAssertEqual(exit.first?["dwell_lower_bound"] as? Bool, true)
    XCTAssertEqual(exit.first?["pid"] as? Int, truth.ownerPid)

    let summary = try XCTUnwrap(records.last)
    XCTAssertEqual(summary["type"] as? String, "summary")
    XCTAssertEqual((summary["ends"] as? [String: Int])?["tracer_exit"], 1)
    XCTAssertEqual(summary["stuck"] as? Int, 1)
    assertDetached(ours)
  }

  func testSignalsUnderFullLoadStopPromptlyWithTheSummary() throws {
    let churn = try XCTUnwrap(Live.churn, "FINWAIT_CHURN (run through `make test`)")
    let ns = try TestNamespace("load")
    try command(["ip", "netns", "exec", ns.name, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse"])
    for signal in [SIGINT, SIGTERM] {
      let before = finwaitProgramIDs()
      let finwait = try FinwaitProcess(["--json", "--netns", String(ns.inode)])
      let ours = finwaitProgramIDs().subtracting(before)
      let load = try SpawnedProcess(["/usr/bin/env", "ip", "netns", "exec", ns.name, churn, "-t", "2", "-d", "3",
                                     "-p", String(Live.port(14))])
      usleep(1_500_000)  // all cores busy with connections ending
      let sent = Date()
      kill(finwait.process.processIdentifier, signal)
      XCTAssertTrue(waitUntil(1) { !finwait.process.isRunning }, "signal \(signal): exits within 1 s under load")
      XCTAssertLessThan(Date().timeIntervalSince(sent), 1.05)
      XCTAssertEqual(try finwait.waitForExit(), 0)
      let records = try finwait.jsonRecords()
      let summary = try XCTUnwrap(records.last, "no output")
      XCTAssertEqual(summary["type"] as? String, "summary", "the final summary is printed")
      XCTAssertEqual(summary["ringbuf_drops"] as? Int, 0)
      XCTAssertGreaterThan(records.filter { $0["type"] as? String == "fin_wait2" }.count, 1_000, "it was under load")
      assertDetached(ours)
      _ = waitUntil(5) { !load.process.isRunning }
    }
  }

  func testDurationStopsAndTextOutputHasHeaderAndSummary() throws {
    let port = Live.port(11)
    let finwait = try FinwaitProcess(["--port", String(port), "--duration", "4s"])
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 200)
    let truth = try driver.truth()
    try driver.finish()
    XCTAssertEqual(try finwait.waitForExit(10), 0)
    let lines = finwait.stdout.lines
    XCTAssertTrue(lines.first?.hasPrefix("TIME") == true, lines.joined(separator: "\n"))
    let line = try XCTUnwrap(lines.first { $0.contains(":\(truth.clientPort) > ") })
    XCTAssertTrue(line.contains(String(truth.ownerPid)) && line.contains("fwdrive") && line.contains("shutdown_wr"), line)
    XCTAssertTrue(line.contains("attached") && line.contains(" peer_fin"), line)
    XCTAssertTrue(line.contains("peer=\(truth.ownerPid)/fwdrive close_wait="), "the local peer is named: \(line)")
    XCTAssertTrue(lines.contains("path = shutdown_wr"), lines.joined(separator: "\n"))
    XCTAssertTrue(lines.contains { $0.hasPrefix("Losses: ringbuf_drops 0, map_full 0") })
  }

  func testFiltersAreAppliedInTheKernel() throws {
    let port = Live.port(12)
    let other = try ScenarioRun.run("shutdown_wr", port: port, holdMs: 100, extraArguments: ["--comm", "nomatch"])
    XCTAssertTrue(other.connectionRecords.isEmpty, "--comm excludes other processes")
    let v6only = try ScenarioRun.run("shutdown_wr", port: port, holdMs: 100, extraArguments: ["--family", "6"])
    XCTAssertTrue(v6only.connectionRecords.isEmpty, "--family 6 excludes IPv4")
    let match = try ScenarioRun.run("shutdown_wr", port: port, holdMs: 100, extraArguments: ["--comm", "fwdrive"])
    XCTAssertEqual(match.connectionRecords.count, 1, "--comm fwdrive matches")
    let minDwell = try ScenarioRun.run("shutdown_wr", port: port, holdMs: 100, extraArguments: ["--min-dwell", "2s"])
    XCTAssertTrue(minDwell.connectionRecords.isEmpty, "--min-dwell hides short dwells")
    XCTAssertEqual((minDwell.summary?["ends"] as? [String: Int])?["peer_fin"], 1, "but the summary counts them")
  }

  func testBadFlagsExitWithUsageError() throws {
    for args in [["--family", "5"], ["--bogus"], ["--stuck", "soon"], ["--port", "70000"], ["--duration", "0"],
                 ["--max-tracked", "4000000000"], ["hist", "--max-tracked", "16"], ["--ready-fd", "1"]] {
      let finwait = try FinwaitProcess(args, waitForAttach: false)
      XCTAssertEqual(try finwait.waitForExit(), 64, "\(args): \(finwait.stderr.text)")
      XCTAssertEqual(finwait.stderr.lines.count, 1, finwait.stderr.text)
      XCTAssertTrue(finwait.stderr.text.hasPrefix("finwait: error: "), finwait.stderr.text)
    }
  }

  func testMissingBTFIsAClearError() throws {
    let finwait = try FinwaitProcess(["--btf", "/nonexistent/vmlinux"], waitForAttach: false)
    XCTAssertEqual(try finwait.waitForExit(), 72)
    XCTAssertEqual(finwait.stderr.lines.count, 1, finwait.stderr.text)
    XCTAssertTrue(finwait.stderr.text.contains("kernel BTF not found at /nonexistent/vmlinux"), finwait.stderr.text)
  }

  /// A file that exists but is no kernel BTF: one line naming the flag, not
  /// libbpf's "Unknown error 4001". Raw text, and an ELF file without .BTF.
  func testAFileThatIsNotBTFIsAClearError() throws {
    for path in ["/etc/passwd", "/bin/true"] {
      let finwait = try FinwaitProcess(["--btf", path], waitForAttach: false)
      XCTAssertEqual(try finwait.waitForExit(), 72, finwait.stderr.text)
      XCTAssertEqual(finwait.stderr.lines.count, 1, finwait.stderr.text)
      XCTAssertTrue(finwait.stderr.text.hasPrefix("finwait: error: --btf \(path) is not usable kernel BTF"), finwait.stderr.text)
      XCTAssertFalse(finwait.stderr.text.contains("Unknown error"), finwait.stderr.text)
    }
  }

  /// Filters that name nothing on the node now: one warning line each, and
  /// tracing goes on (a process or namespace may yet appear).
  func testFiltersThatNameNothingWarnAndTraceOn() throws {
    for (args, flag) in [(["--pid", "999999"], "--pid 999999"), (["--netns", "12345"], "--netns 12345")] {
      let finwait = try FinwaitProcess(args + ["--duration", "1s"])
      XCTAssertEqual(try finwait.waitForExit(), 0, finwait.stderr.text)
      let warnings = finwait.stderr.lines.filter { $0.hasPrefix("finwait: warning: ") }
      XCTAssertEqual(warnings.count, 1, finwait.stderr.text)
      XCTAssertTrue(warnings.first?.hasPrefix("finwait: warning: \(flag): no ") ?? false, finwait.stderr.text)
      XCTAssertTrue(finwait.stdout.lines.contains { $0.hasPrefix("Losses: ") }, "traced, then summarized: \(finwait.stdout.text)")
    }
    let snapshot = try FinwaitProcess(["snapshot", "--pid", "999999"], waitForAttach: false)
    XCTAssertEqual(try snapshot.waitForExit(), 0, snapshot.stderr.text)
    XCTAssertTrue(snapshot.stderr.text.hasPrefix("finwait: warning: --pid 999999: no "), snapshot.stderr.text)
  }

  func testUnprivilegedUserIsToldWhatIsMissing() throws {
    let finwait = try FinwaitProcess(
      [], wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"],
      waitForAttach: false)
    XCTAssertEqual(try finwait.waitForExit(), 77, finwait.stderr.text)
    XCTAssertEqual(finwait.stderr.lines.count, 1, finwait.stderr.text)
    XCTAssertTrue(finwait.stderr.text.contains("permission denied"), finwait.stderr.text)
  }

  func testRootWithoutBPFCapabilitiesIsRefused() throws {
    // As in a container: uid 0, but CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN dropped.
    let finwait = try FinwaitProcess([], wrapper: ["/usr/bin/setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin"],
                                     waitForAttach: false)
    XCTAssertEqual(try finwait.waitForExit(), 77, finwait.stderr.text)
    XCTAssertEqual(finwait.stderr.lines.count, 1, finwait.stderr.text)
    XCTAssertTrue(finwait.stderr.text.contains("root without capabilities"), finwait.stderr.text)
  }

  func testClosedStdoutExitsQuietly() throws {
    // `finwait --json | head -1`: the reader goes away after the first line.
    let port = Live.port(13)
    let before = finwaitProgramIDs()
    let readyFile = NSTemporaryDirectory() + "finwait-ready-head-\(getpid())"
    FileManager.default.createFile(atPath: readyFile, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: readyFile) }
    let shell = try SpawnedProcess(
      ["/bin/bash", "-c", "'\(Live.finwait ?? "")' --json --port \(port) --duration 30s --ready-fd 3 3>'\(readyFile)'"
        + " | head -1; echo \"status=${PIPESTATUS[0]}\""])
    let (stdout, stderr) = (shell.stdout, shell.stderr)
    XCTAssertTrue(waitUntil(30) { (try? String(contentsOfFile: readyFile, encoding: .utf8))?.contains("ready") == true },
                  "finwait did not get ready: \(stderr.text)")
    let ours = finwaitProgramIDs().subtracting(before)
    XCTAssertFalse(ours.isEmpty, "finwait's program is loaded")
    for _ in 0..<2 {
      let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 50)
      try driver.finish()
    }
    // Within the 30 s --duration: the exit came from the reader going away.
    XCTAssertTrue(waitUntil(20) { !shell.process.isRunning && stdout.isClosed && stderr.isClosed })
    XCTAssertEqual(stdout.lines.filter { $0.hasPrefix("{") }.count, 1, stdout.text)
    XCTAssertTrue(stdout.text.contains("status=0"), "finwait exits 0 when its reader goes away: \(stdout.text)")
    XCTAssertFalse(stderr.text.contains("error"), stderr.text)
    assertDetached(ours)
  }

  /// IDs of loaded BPF programs named like finwait's. Compare sets taken
  /// before and after a start, so another tracer on the machine does not count.
  func finwaitProgramIDs() -> Set<Int> {
    guard let bpftool = try? SpawnedProcess(["/usr/sbin/bpftool", "-j", "prog", "show"]) else { return [] }
    bpftool.process.waitUntilExit()
    waitUntil(2) { bpftool.stdout.isClosed }
    let programs = (try? JSONSerialization.jsonObject(with: Data(bpftool.stdout.text.utf8))) as? [[String: Any]] ?? []
    return Set(programs.filter { $0["name"] as? String == "inet_sock_set_state" }.compactMap { $0["id"] as? Int })
  }

  /// The kernel frees a program after an RCU grace period: poll, do not sample once.
  func assertDetached(_ ours: Set<Int>, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertFalse(ours.isEmpty, "finwait's program was seen while attached", file: file, line: line)
    XCTAssertTrue(waitUntil(3) { finwaitProgramIDs().isDisjoint(with: ours) },
                  "program \(ours) still loaded after exit", file: file, line: line)
  }
}

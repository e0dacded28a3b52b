import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `--stack` against fwstack, a program built with symbols and frame
/// pointers that sends its FIN from functions with known names:
/// main -> serve_request -> finish_response -> shutdown(), and
/// main -> serve_request -> drop_connection -> close() (also with a second
/// thread running).
final class StackTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive(stackDriver: true)
  }

  /// Runs fwstack once; returns its pid and client port.
  @discardableResult
  private func closeFromKnownFunctions(_ scenario: String, port: Int, holdMs: Int = 300) throws -> (pid: Int, port: Int) {
    let driver = try SpawnedProcess([Live.stackDriver ?? "fwstack", scenario, String(port), String(holdMs)])
    guard waitUntil(10, { stdout(driver).contains("\n") }),
      let o = try JSONSerialization.jsonObject(with: Data((driver.stdout.lines.first ?? "").utf8)) as? [String: Any],
      let pid = o["owner_pid"] as? Int, let clientPort = o["client_port"] as? Int
    else { throw LiveError("fwstack printed no truth: \(driver.stdout.text) \(driver.stderr.text)") }
    guard waitUntil(Double(holdMs) / 1000 + 5, { !driver.process.isRunning }), driver.process.terminationStatus == 0 else {
      throw LiveError("fwstack failed: \(driver.stderr.text)")
    }
    return (pid, clientPort)
  }

  private func stdout(_ p: SpawnedProcess) -> String { p.stdout.text }

  private func frames(_ record: [String: Any]) -> [(module: String, symbol: String, recovered: Bool)] {
    (record["stack"] as? [[String: Any]] ?? []).map {
      (URL(fileURLWithPath: $0["module"] as? String ?? "?").lastPathComponent, $0["symbol"] as? String ?? "?",
       $0["recovered"] as? Bool ?? false)
    }
  }

  func testTheFunctionsThatSentTheFinAreNamed() throws {
    let port = Live.port(39)
    let finwait = try FinwaitProcess(["--json", "--stack", "--port", String(port)])
    let shut = try closeFromKnownFunctions("shutdown_wr", port: port)
    let closed = try closeFromKnownFunctions("close", port: port)
    let threaded = try closeFromKnownFunctions("close_mt", port: port)
    usleep(400_000)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    XCTAssertFalse(finwait.stderr.text.contains("CAP_SYS_NICE"), "root reads new call sites in real time: \(finwait.stderr.text)")
    let records = try finwait.validatedRecords()
    func record(_ clientPort: Int) throws -> [String: Any] {
      try XCTUnwrap(records.first { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == clientPort }, "\(records)")
    }

    let a = try record(shut.port)
    XCTAssertEqual(a["pid"] as? Int, shut.pid)
    XCTAssertEqual(a["path"] as? String, "shutdown_wr")
    XCTAssertEqual(a["orphaned"] as? Bool, false)
    let aFrames = frames(a)
    XCTAssertGreaterThanOrEqual(aFrames.count, 4, "\(a)")
    XCTAssertEqual(aFrames.first?.module, "libc.so.6", "\(aFrames)")
    XCTAssertEqual(aFrames.first?.symbol, "shutdown", "\(aFrames)")
    // libc's shutdown() sets up no frame: its caller is recovered from the stack.
    XCTAssertTrue(aFrames.dropFirst().prefix(3).map(\.symbol) == ["finish_response", "serve_request", "main"], "\(aFrames)")
    XCTAssertTrue(aFrames[1].recovered, "\(aFrames)")
    XCTAssertEqual(aFrames[1].module, "fwstack")
    let dwell = try XCTUnwrap(a["dwell_ns"] as? Int)
    XCTAssertTrue((250_000_000...1_500_000_000).contains(dwell), "dwell \(dwell) for a 300 ms hold")

    let b = try record(closed.port)
    XCTAssertEqual(b["pid"] as? Int, closed.pid)
    XCTAssertEqual(b["path"] as? String, "close")
    XCTAssertEqual(b["orphaned_at_entry"] as? Bool, true)
    let bFrames = frames(b)
    XCTAssertEqual(bFrames.first?.symbol, "close", "\(bFrames)")
    XCTAssertTrue(bFrames.dropFirst().prefix(3).map(\.symbol) == ["drop_connection", "serve_request", "main"], "\(bFrames)")

    // With a second thread, glibc's close() moves the stack pointer before the
    // syscall: the caller is found where close()'s .eh_frame says, not at the top.
    let c = try record(threaded.port)
    let cFrames = frames(c)
    XCTAssertEqual(cFrames.first?.symbol, "close", "\(cFrames)")
    XCTAssertTrue(cFrames.dropFirst().prefix(3).map(\.symbol) == ["drop_connection", "serve_request", "main"], "\(cFrames)")
    XCTAssertTrue(cFrames.count > 1 && cFrames[1].recovered, "\(cFrames)")

    let summary = try XCTUnwrap(records.first { $0["type"] as? String == "summary" })
    let sites = try XCTUnwrap(summary["call_sites"] as? [[String: Any]], "\(summary)")
    // close and close_mt: the same functions, another offset in libc's close.
    XCTAssertEqual(sites.count, 3)
    XCTAssertEqual(sites.compactMap { $0["connections"] as? Int }, [1, 1, 1])
    XCTAssertEqual(summary["stack_lost"] as? Int, 0)
  }

  /// The caller libc's shutdown() hides is recovered from the user stack
  /// pointer; before 5.15 that pointer comes from the registers at the top of
  /// the closer's kernel stack (forced here).
  func testTheCallerIsRecoveredWithRegistersReadFromTheTopOfTheKernelStack() throws {
    let port = Live.port(126)
    let finwait = try FinwaitProcess(["--json", "--stack", "--port", String(port)], wrapper: Live.registersFromStack)
    let shut = try closeFromKnownFunctions("shutdown_wr", port: port)
    let threaded = try closeFromKnownFunctions("close_mt", port: port)
    // Both drivers have exited: stopping drains what finwait has not read yet.
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let records = try finwait.validatedRecords()
    for (closer, symbol, caller) in [(shut, "shutdown", "finish_response"), (threaded, "close", "drop_connection")] {
      let r = try XCTUnwrap(records.first { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == closer.port }, "\(records)")
      let f = frames(r)
      XCTAssertEqual(f.first?.symbol, symbol, "\(f)")
      XCTAssertTrue(f.count > 1 && f[1].recovered && f[1].symbol == caller, "\(f)")
    }
  }

  /// A closer that exits 1 ms after its FIN (its maps and files gone soon
  /// after): the kernel wakes finwait for a new stack at once, finwait reads
  /// the maps and opens every file a frame falls in before parsing any.
  func testACloserThatExitsOneMillisecondAfterItsFinIsStillNamed() throws {
    let port = Live.port(54)
    let finwait = try FinwaitProcess(["--json", "--stack", "--port", String(port)])
    var ports: [Int] = []
    for _ in 0..<5 { ports.append(try closeFromKnownFunctions("shutdown_wr", port: port, holdMs: 1).port) }
    usleep(400_000)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let records = try finwait.jsonRecords()
    for clientPort in ports {
      let r = try XCTUnwrap(records.first { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == clientPort },
                            "\(records)")
      XCTAssertEqual(frames(r).prefix(4).map(\.symbol), ["shutdown", "finish_response", "serve_request", "main"], "\(r)")
    }
  }

  /// Closers that exit while finwait cannot run at all (stopped here, as a
  /// descheduled vCPU or a loaded node leaves it) are named anyway, the
  /// caller libc's wrapper hides included: from what the kernel saw at the
  /// FIN (each frame's build id and file offset, the executable's path).
  func testClosersGoneBeforeFinwaitRunsAreNamedFromWhatTheKernelSaw() throws {
    let port = Live.port(129)
    let finwait = try FinwaitProcess(["--json", "--stack", "--port", String(port)])
    let pid = finwait.process.processIdentifier
    XCTAssertEqual(kill(pid, SIGSTOP), 0)
    let closers: [(port: Int, symbol: String, caller: String)]
    do {
      defer { kill(pid, SIGCONT) }
      closers = [
        (try closeFromKnownFunctions("shutdown_wr", port: port, holdMs: 0).port, "shutdown", "finish_response"),
        (try closeFromKnownFunctions("close_mt", port: port, holdMs: 0).port, "close", "drop_connection"),
      ]
    }
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let records = try finwait.validatedRecords()
    for closer in closers {
      let r = try XCTUnwrap(records.first { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == closer.port },
                            "\(records)")
      let f = frames(r)
      XCTAssertEqual(f.prefix(4).map(\.symbol), [closer.symbol, closer.caller, "serve_request", "main"], "\(r)")
      XCTAssertEqual(f.prefix(4).map(\.module), ["libc.so.6", "fwstack", "fwstack", "fwstack"], "\(r)")
      XCTAssertTrue(f.count > 1 && f[1].recovered, "\(f)")
    }
  }

  /// Without CAP_SYS_NICE the reader of new call sites runs at normal
  /// priority: one warning, and a closer that stays names its frames still.
  func testWithoutSysNiceOneWarningAndCallSitesStillNamed() throws {
    let port = Live.port(55)
    let finwait = try FinwaitProcess(["--json", "--stack", "--port", String(port)],
                                     wrapper: ["/usr/bin/setpriv", "--bounding-set=-sys_nice"])
    let shut = try closeFromKnownFunctions("shutdown_wr", port: port)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let warnings = finwait.stderr.lines.filter { $0.contains("--stack: without CAP_SYS_NICE") }
    XCTAssertEqual(warnings.count, 1, finwait.stderr.text)
    let record = try XCTUnwrap(try finwait.jsonRecords().first { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == shut.port })
    XCTAssertEqual(frames(record).prefix(4).map(\.symbol), ["shutdown", "finish_response", "serve_request", "main"], "\(record)")
  }

  func testTextLinesAndTheSummaryShowTheCallSite() throws {
    let port = Live.port(40)
    let finwait = try FinwaitProcess(["--stack", "--port", String(port)])
    let run = try closeFromKnownFunctions("shutdown_wr", port: port)
    usleep(400_000)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let text = finwait.stdout.text
    let line = try XCTUnwrap(finwait.stdout.lines.first { $0.contains(":\(run.port) > ") }, text)
    XCTAssertTrue(line.contains(" stack=libc.so.6:shutdown+0x"), line)
    XCTAssertTrue(line.contains("<fwstack:finish_response+0x"), line)
    XCTAssertTrue(text.contains("Call sites that sent the FIN (1 distinct), most connections first:"), text)
  }

  func testHistByStackCountsOneCallSiteAcrossProcesses() throws {
    let port = Live.port(41)
    // One interval that holds both connections: longer than the test, ended
    // by Ctrl-C, which drains what is queued and prints it.
    let hist = try FinwaitProcess(["hist", "--by", "stack", "-m", "-i", "600", "--port", String(port)])
    // Two processes: two address layouts, two kernel stack ids, one call site.
    for _ in 0..<2 { try closeFromKnownFunctions("shutdown_wr", port: port) }
    XCTAssertEqual(try hist.stop(), 0, hist.stderr.text)
    let lines = hist.stdout.lines
    let blocks = lines.indices.filter { lines[$0].hasPrefix("path = shutdown_wr, stack = ") }
    XCTAssertEqual(blocks.count, 1, "one block for the call site: \(hist.stdout.text)")
    var total = 0
    for start in blocks {
      let frames = lines[(start + 1)...].prefix { $0.hasPrefix("    ") && !$0.contains("->") }
      XCTAssertEqual(frames.first, "    libc.so.6:shutdown+0x7", hist.stdout.text)
      XCTAssertTrue(frames.contains { $0.contains("fwstack:finish_response+0x") && $0.hasSuffix("(recovered)") },
                    hist.stdout.text)
      for row in lines[(start + 1)...].drop(while: { !$0.contains("->") }).prefix(while: { $0.contains("->") }) {
        let f = row.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "|" })
        if f.count >= 4, let count = Int(f[3]) { total += count }
      }
    }
    XCTAssertEqual(total, 2, hist.stdout.text)
  }

  func testExitAndExecHaveNoStackButStillTheirPath() throws {
    for scenario in ["exit", "exec"] {
      let run = try ScenarioRun.run(scenario, port: Live.port(42), extraArguments: ["--stack"])
      let r = try XCTUnwrap(run.connectionRecords.first, "\(scenario): \(run.records)")
      XCTAssertNil(r["stack"], "\(scenario): \(r)")
      XCTAssertEqual(r["path"] as? String, scenario == "exit" ? "exit" : "close", "\(r)")
    }
  }
}

import Foundation
import XCTest

/// Each test loads the real BPF program (through finwait) and drives one
/// real loopback connection through a FIN path, then checks owner, path,
/// orphaned/attached, end and dwell against what the driver did
/// (`ScenarioRun.onlyConnectionRecord`, `assertDwell` in LiveHarness.swift).
final class ScenarioTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  func connection(_ run: ScenarioRun, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    try run.onlyConnectionRecord(file: file, line: line)
  }

  func testShutdownWriteThenPeerClosesAfter300ms() throws {
    let run = try ScenarioRun.run("shutdown_wr", port: Live.port(1), holdMs: 300)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "shutdown_wr")
    XCTAssertEqual(r["syscall"] as? String, "shutdown")
    XCTAssertEqual(r["orphaned"] as? Bool, false)
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    XCTAssertEqual(r["family"] as? String, "ipv4")
    XCTAssertEqual(r["saddr"] as? String, "127.0.0.1")
    XCTAssertEqual(r["dport"] as? Int, Live.port(1))
    assertDwell(r["dwell_ns"], near: 300)
    assertSkippedRunsShownAsTheKernelCountsThem(run)
  }

  /// Skipped program runs are counted by Linux 5.12+ (bpf_prog_info): a
  /// number there, and before that null with one warning, never a 0. The
  /// release string is the test's own truth; finwait decides by a probe.
  func assertSkippedRunsShownAsTheKernelCountsThem(_ run: ScenarioRun, file: StaticString = #filePath, line: UInt = #line) {
    let release = Live.kernelRelease
    let counts = Live.kernelAtLeast(5, 12)
    let value = run.summary?["recursion_misses"]
    let warned = run.stderr.contains("does not count the state changes it skips")
    if counts {
      XCTAssertNotNil(value as? Int, "\(release): \(String(describing: value))", file: file, line: line)
      XCTAssertFalse(warned, run.stderr, file: file, line: line)
    } else {
      XCTAssertTrue(value is NSNull, "\(release): \(String(describing: value))", file: file, line: line)
      XCTAssertTrue(warned, run.stderr, file: file, line: line)
    }
  }

  func testShutdownReadWrite() throws {
    let run = try ScenarioRun.run("shutdown_rdwr", port: Live.port(2), holdMs: 300)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "shutdown_rdwr")
    XCTAssertEqual(r["orphaned"] as? Bool, false)
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    assertDwell(r["dwell_ns"], near: 300)
  }

  /// An orphan's FIN_WAIT2 goes on in a timewait socket; the peer (the driver's
  /// server side, on this host) closes after the hold: the real end, not ~0.
  func assertOrphanEndedByLocalPeer(_ r: [String: Any], holdMs: Int, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r["orphaned"] as? Bool, true, file: file, line: line)
    XCTAssertEqual(r["end"] as? String, "peer_fin", file: file, line: line)
    XCTAssertNil(r["dwell_lower_bound"], file: file, line: line)
    assertDwell(r["dwell_ns"], near: holdMs, file: file, line: line)
    XCTAssertEqual(r["peer_comm"] as? String, "fwdrive", "the peer that closed", file: file, line: line)
    XCTAssertEqual(r["peer_closed"] as? Bool, true, file: file, line: line)
    assertDwell(r["peer_close_wait_ns"], near: holdMs, file: file, line: line)
  }

  func testCloseWhilePeerKeepsItsSocketIsFollowedToItsRealEnd() throws {
    let run = try ScenarioRun.run("close", port: Live.port(3), holdMs: 300)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "close")
    XCTAssertEqual(r["syscall"] as? String, "close")
    XCTAssertEqual(r["orphaned_at_entry"] as? Bool, true)
    XCTAssertEqual(r["peer_pid"] as? Int, run.truth.ownerPid)
    assertOrphanEndedByLocalPeer(r, holdMs: 300)
  }

  func testDup2OverTheSocketIsCloseByDup2() throws {
    let run = try ScenarioRun.run("dup2", port: Live.port(4), holdMs: 200)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "close")
    XCTAssertEqual(r["syscall"] as? String, "dup2")
    assertOrphanEndedByLocalPeer(r, holdMs: 200)
  }

  func testChildExitingWithTheSocketOpen() throws {
    let run = try ScenarioRun.run("exit", port: Live.port(5), holdMs: 200)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "exit")
    XCTAssertEqual(r["syscall"] as? String, "exit_group")
    assertOrphanEndedByLocalPeer(r, holdMs: 200)
  }

  func testCloseOnExec() throws {
    let run = try ScenarioRun.run("exec", port: Live.port(6), holdMs: 200)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "close")
    XCTAssertEqual(r["syscall"] as? String, "execve")
    assertOrphanEndedByLocalPeer(r, holdMs: 200)
  }

  func testResetWhileInFinWait2() throws {
    let run = try ScenarioRun.run("rst", port: Live.port(7), holdMs: 300)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "shutdown_wr")
    XCTAssertEqual(r["orphaned"] as? Bool, false)
    XCTAssertEqual(r["end"] as? String, "reset")
    assertDwell(r["dwell_ns"], near: 300)
  }

  func testClosingAnAttachedFinWait2SocketOrphansIt() throws {
    let run = try ScenarioRun.run("close_attached", port: Live.port(8), holdMs: 300)
    let r = try connection(run)
    XCTAssertEqual(r["path"] as? String, "shutdown_wr", "the path is what sent the FIN")
    XCTAssertEqual(r["orphaned_at_entry"] as? Bool, false)
    XCTAssertEqual(r["orphaned"] as? Bool, true)
    // Closed 300 ms into FIN_WAIT2, the peer closes 100 ms later.
    assertOrphanEndedByLocalPeer(r, holdMs: 400)
  }

  func testIPv6() throws {
    let run = try ScenarioRun.run("shutdown_wr", port: Live.port(9), holdMs: 300, family: 6)
    let r = try connection(run)
    XCTAssertEqual(r["family"] as? String, "ipv6")
    XCTAssertEqual(r["saddr"] as? String, "::1")
    XCTAssertEqual(r["daddr"] as? String, "::1")
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    assertDwell(r["dwell_ns"], near: 300)
  }

  /// Kernels before 5.15 have no bpf_task_pt_regs: the syscall and its
  /// arguments come from the registers saved at the top of the closer's kernel
  /// stack. Forced here, every path must come out as exactly as with the helper.
  func testEveryPathWithRegistersReadFromTheTopOfTheKernelStack() throws {
    let expected: [(scenario: String, path: String, syscall: String)] = [
      ("shutdown_wr", "shutdown_wr", "shutdown"), ("shutdown_rdwr", "shutdown_rdwr", "shutdown"),
      ("close", "close", "close"), ("dup2", "close", "dup2"), ("exec", "close", "execve"),
      ("exit", "exit", "exit_group"),
    ]
    for (scenario, path, syscall) in expected {
      let run = try ScenarioRun.run(scenario, port: Live.port(125), holdMs: 200, finwaitWrapper: Live.registersFromStack)
      let r = try connection(run)
      XCTAssertEqual(r["path"] as? String, path, scenario)
      XCTAssertEqual(r["syscall"] as? String, syscall, scenario)
      XCTAssertEqual(r["end"] as? String, "peer_fin", scenario)
      assertDwell(r["dwell_ns"], near: 200)
    }
  }
}

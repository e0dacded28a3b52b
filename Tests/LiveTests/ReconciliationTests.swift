import Foundation
import XCTest

/// Orphans followed to their real end inside timewait sockets, connections
/// that existed before finwait, network namespaces, and the local peer that
/// never closed. Each test makes its own namespaces and sockets.
final class ReconciliationTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  func ms(_ value: Any?) -> Int { (value as? Int ?? -1_000_000_000) / 1_000_000 }

  /// Runs one driver scenario under finwait and waits for its client's
  /// fin_wait2 record (orphans end only when the kernel is done with them).
  func traced(_ scenario: String, port: Int, holdMs: Int, in namespace: TestNamespace? = nil,
              arguments: [String] = [], waitSeconds: Double = 10) throws -> (record: [String: Any], truth: Truth) {
    var args = ["--json", "--port", String(port)] + arguments
    if let namespace { args += ["--netns", String(namespace.inode)] }
    let finwait = try FinwaitProcess(args)
    let driver = try DriverProcess(scenario, port: port, holdMs: holdMs, in: namespace)
    let truth = try driver.truth()
    let found = finwait.waitForRecord(waitSeconds) {
      $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort
    }
    XCTAssertEqual(try finwait.stop(), 0)
    try? driver.finish()
    let records = try finwait.jsonRecords().filter { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort }
    XCTAssertTrue(found, "no record for the connection: \(finwait.stdout.text) \(finwait.stderr.text)")
    XCTAssertEqual(records.count, 1, "\(records)")
    return (try XCTUnwrap(records.first), truth)
  }

  func testOrphanTimesOutAfterItsNamespacesFinTimeout() throws {
    let ns = try TestNamespace("fin3", finTimeoutSeconds: 3)
    // The client closes; the server never answers within the 3 s fin timeout.
    let (r, truth) = try traced("close", port: Live.port(20), holdMs: 5_000, in: ns)
    XCTAssertEqual(r["end"] as? String, "timeout")
    XCTAssertEqual(r["orphaned"] as? Bool, true)
    XCTAssertEqual(r["pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(r["netns"] as? Int, ns.inode)
    XCTAssertNil(r["dwell_lower_bound"])
    XCTAssertGreaterThanOrEqual(ms(r["dwell_ns"]), 2_950)
    XCTAssertLessThanOrEqual(ms(r["dwell_ns"]), 3_400)
    // The peer that never closed is named.
    XCTAssertEqual(r["peer_pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(r["peer_comm"] as? String, "fwdrive")
    XCTAssertEqual(r["peer_closed"] as? Bool, false)
    XCTAssertGreaterThanOrEqual(ms(r["peer_close_wait_ns"]), 2_950)
  }

  func testOrphanEndsWhenThePeerClosesAfterOneSecond() throws {
    let ns = try TestNamespace("fin3b", finTimeoutSeconds: 3)
    let (r, _) = try traced("close", port: Live.port(21), holdMs: 1_000, in: ns)
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    XCTAssertGreaterThanOrEqual(ms(r["dwell_ns"]), 950)
    XCTAssertLessThanOrEqual(ms(r["dwell_ns"]), 1_150)
  }

  /// A tcp_fin_timeout above TCP_TIMEWAIT_LEN keeps the orphan a full
  /// socket in FIN_WAIT2 (not handed to timewait): its local peer's close
  /// comes before its end, and names the peer all the same.
  func testAnOrphanKeptPastAMinuteNamesThePeerThatClosed() throws {
    let ns = try TestNamespace("fin90", finTimeoutSeconds: 90)
    let (r, truth) = try traced("close", port: Live.port(128), holdMs: 500, in: ns)
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    XCTAssertEqual(r["orphaned_at_entry"] as? Bool, true)
    XCTAssertEqual(r["orphaned"] as? Bool, true)
    XCTAssertNil(r["dwell_lower_bound"])
    XCTAssertGreaterThanOrEqual(ms(r["dwell_ns"]), 450)
    XCTAssertEqual(r["peer_pid"] as? Int, truth.ownerPid, "\(r)")
    XCTAssertEqual(r["peer_comm"] as? String, "fwdrive")
    XCTAssertEqual(r["peer_closed"] as? Bool, true)
    XCTAssertGreaterThanOrEqual(ms(r["peer_close_wait_ns"]), 450)
  }

  func testPeerFinFromTheTimewaitTimerAlone() throws {
    // --no-peers: only sock_diag's TIME_WAIT timer tells when the FIN came.
    let ns = try TestNamespace("fin3c", finTimeoutSeconds: 3)
    let (r, _) = try traced("close", port: Live.port(22), holdMs: 1_000, in: ns, arguments: ["--no-peers"])
    XCTAssertEqual(r["end"] as? String, "peer_fin")
    XCTAssertNil(r["peer_pid"])
    XCTAssertGreaterThanOrEqual(ms(r["dwell_ns"]), 950)
    XCTAssertLessThanOrEqual(ms(r["dwell_ns"]), 1_150)
  }

  func testTCPLinger2IsTheSocketsOwnTimeout() throws {
    // Host namespace (fin timeout 60 s); the socket asks for 2 s.
    let (r, _) = try traced("close_linger2", port: Live.port(23), holdMs: 4_000)
    XCTAssertEqual(r["end"] as? String, "timeout")
    XCTAssertGreaterThanOrEqual(ms(r["dwell_ns"]), 1_950)
    XCTAssertLessThanOrEqual(ms(r["dwell_ns"]), 2_400)
  }

  func testConnectionThatExistedBeforeFinwaitIsListedThenTrackedToItsEnd() throws {
    // Ended by SIGUSR1 once finwait runs, however long it took to start
    // (seconds under emulation in make test-kernel).
    let port = Live.port(24)
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 60_000)
    let truth = try driver.truth()
    let entered = Date()
    usleep(500_000)
    let finwait = try FinwaitProcess(["--json", "--port", String(port)])
    XCTAssertTrue(finwait.waitForRecord(10) { $0["type"] as? String == "existing" }, finwait.stdout.text)
    usleep(300_000)
    let heldUntilSignal = Int(Date().timeIntervalSince(entered) * 1000)
    kill(driver.process.processIdentifier, SIGUSR1)
    try driver.finish()
    // The driver closes after the signal arrives: slow under emulation.
    let heldUntilExit = Int(Date().timeIntervalSince(entered) * 1000)
    XCTAssertTrue(finwait.waitForRecord(5) { $0["type"] as? String == "fin_wait2" })
    XCTAssertEqual(try finwait.stop(), 0)
    let records = try finwait.jsonRecords().filter { $0["sport"] as? Int == truth.clientPort }
    let existing = try XCTUnwrap(records.first { $0["type"] as? String == "existing" }, "\(records)")
    XCTAssertEqual(existing["pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(existing["comm"] as? String, "fwdrive")
    XCTAssertEqual(existing["orphaned"] as? Bool, false)
    XCTAssertEqual(existing["dwell_lower_bound"] as? Bool, true)
    XCTAssertGreaterThanOrEqual(ms(existing["dwell_ns"]), 400)
    XCTAssertEqual(existing["peer_pid"] as? Int, truth.ownerPid)

    let ended = try XCTUnwrap(records.first { $0["type"] as? String == "fin_wait2" })
    XCTAssertEqual(ended["end"] as? String, "peer_fin")
    XCTAssertEqual(ended["pid"] as? Int, truth.ownerPid, "owner known from the snapshot")
    XCTAssertEqual(ended["dwell_lower_bound"] as? Bool, true)
    // A lower bound of the time held: FIN_WAIT2 began just after the truth line.
    XCTAssertGreaterThanOrEqual(ms(ended["dwell_ns"]), heldUntilSignal - 300)
    XCTAssertLessThanOrEqual(ms(ended["dwell_ns"]), heldUntilExit + 300)
  }

  func testSnapshotListsAttachedAndTimewaitWithThePeer() throws {
    let attachedPort = Live.port(25)
    let orphanPort = Live.port(26)
    // Holds far longer than the test: under emulation two snapshots can take over 10 s,
    // and the orphan must still be in FIN_WAIT2 when the second one runs.
    let attached = try DriverProcess("shutdown_wr", port: attachedPort, holdMs: 60_000)
    let orphan = try DriverProcess("close", port: orphanPort, holdMs: 60_000)
    defer {
      kill(attached.process.processIdentifier, SIGKILL)
      kill(orphan.process.processIdentifier, SIGKILL)
    }
    let a = try attached.truth()
    let o = try orphan.truth()
    let orphanedBy = monotonicSeconds()  // the orphan's close() follows its truth line
    XCTAssertTrue(waitForFinWait2([a.clientPort, o.clientPort]), "the two sockets did not reach FIN_WAIT2")
    usleep(300_000)  // so the local peer has sat in CLOSE_WAIT at least 200 ms

    let snapshot = try FinwaitProcess(["snapshot", "--json", "--port", String(attachedPort)], waitForAttach: false)
    XCTAssertEqual(try snapshot.waitForExit(), 0, snapshot.stderr.text)
    let r = try XCTUnwrap(try snapshot.jsonRecords().first { $0["sport"] as? Int == a.clientPort }, snapshot.stdout.text)
    XCTAssertEqual(r["type"] as? String, "existing")
    XCTAssertEqual(r["pid"] as? Int, a.ownerPid)
    XCTAssertEqual(r["orphaned"] as? Bool, false)
    XCTAssertEqual(r["peer_pid"] as? Int, a.ownerPid, "the server side in CLOSE_WAIT")
    XCTAssertEqual(r["peer_comm"] as? String, "fwdrive")
    XCTAssertGreaterThanOrEqual(ms(r["peer_close_wait_ns"]), 200)

    let text = try FinwaitProcess(["snapshot", "--port", String(orphanPort)], waitForAttach: false)
    XCTAssertEqual(try text.waitForExit(), 0, text.stderr.text)
    let line = try XCTUnwrap(text.stdout.lines.first { $0.contains(":\(o.clientPort) > ") }, text.stdout.text)
    XCTAssertTrue(line.contains("orphan") && line.contains("EXISTING (timewait until "), line)
    XCTAssertTrue(text.stdout.lines.last?.contains("0 attached, 1 orphaned in timewait") == true, text.stdout.text)

    // The orphan's dwell is a real lower bound: its namespace's fin timeout
    // minus what its timewait timer has left (this namespace's too).
    let json = try FinwaitProcess(["snapshot", "--json", "--port", String(orphanPort)], waitForAttach: false)
    XCTAssertEqual(try json.waitForExit(), 0, json.stderr.text)
    let elapsed = monotonicSeconds() - orphanedBy
    let r2 = try XCTUnwrap(try json.jsonRecords().first { $0["sport"] as? Int == o.clientPort }, json.stdout.text)
    XCTAssertEqual(r2["dwell_lower_bound"] as? Bool, true)
    XCTAssertGreaterThanOrEqual(ms(r2["dwell_ns"]), 200, "\(r2)")
    XCTAssertLessThanOrEqual(Double(ms(r2["dwell_ns"])), elapsed * 1000 + 100, "\(r2)")
  }

  /// Owners come from one BPF iterator pass over every file table (Linux
  /// 5.11+), else from /proc/PID/fd: both name the same processes. In a pid
  /// namespace of its own the iterator's pids would not be finwait's, so it
  /// reads /proc there (the node's, still mounted). An IPv4 and an IPv6
  /// connection on one port: one sock_diag dump returns both families.
  func testSnapshotOwnersFromTheIteratorAndFromProcAgree() throws {
    let port = Live.port(127)
    let held = try DriverProcess("shutdown_wr", port: port, holdMs: 60_000)
    let held6 = try DriverProcess("shutdown_wr", port: port, holdMs: 60_000, family: 6)
    defer {
      kill(held.process.processIdentifier, SIGKILL)
      kill(held6.process.processIdentifier, SIGKILL)
    }
    let truth = try held.truth()
    let truth6 = try held6.truth()
    XCTAssertTrue(waitForFinWait2([truth.clientPort, truth6.clientPort]), "the two sockets did not reach FIN_WAIT2")

    // A quiet test machine has few open files, where /proc is chosen: the
    // iterator is forced to be shown (FINWAIT_OWNERS, for tests).
    let iterator = Live.kernelAtLeast(5, 11) ? "owners from a BPF iterator" : "owners from /proc"
    let env = ["/usr/bin/env", "FINWAIT_OWNERS=iterator"]
    let runs = [("iterator", env, iterator), ("proc", ["/usr/bin/env", "FINWAIT_OWNERS=proc"], "owners from /proc"),
                ("own pid namespace", ["/usr/bin/unshare", "--pid", "--fork"] + env, "owners from /proc")]
    for (name, wrapper, expected) in runs {
      let snapshot = try FinwaitProcess(["snapshot", "--json", "-v", "--port", String(port)], wrapper: wrapper, waitForAttach: false)
      XCTAssertEqual(try snapshot.waitForExit(), 0, snapshot.stderr.text)
      XCTAssertTrue(snapshot.stderr.text.contains(expected), "\(name): \(snapshot.stderr.text)")
      for (t, family) in [(truth, "ipv4"), (truth6, "ipv6")] {
        let r = try XCTUnwrap(try snapshot.jsonRecords().first { $0["sport"] as? Int == t.clientPort && $0["family"] as? String == family },
                              "\(name) \(family): \(snapshot.stdout.text)")
        XCTAssertEqual(r["pid"] as? Int, t.ownerPid, "\(name): \(r)")
        XCTAssertEqual(r["comm"] as? String, "fwdrive", "\(name): \(r)")
        XCTAssertEqual(r["peer_pid"] as? Int, t.ownerPid, "\(name): the server side in CLOSE_WAIT: \(r)")
      }
    }
  }

  func testSameFourTupleInTwoNamespacesIsTwoConnections() throws {
    let a = try TestNamespace("a")
    let b = try TestNamespace("b")
    let port = Live.port(27)
    let finwait = try FinwaitProcess(["--json", "--port", String(port)])
    let inA = try DriverProcess("shutdown_wr", port: port, holdMs: 600, clientPort: 45_001, in: a)
    let inB = try DriverProcess("shutdown_wr", port: port, holdMs: 600, clientPort: 45_001, in: b)
    let truthA = try inA.truth()
    let truthB = try inB.truth()
    try inA.finish()
    try inB.finish()
    XCTAssertTrue(finwait.waitForRecord(5) { _ in
      ((try? finwait.jsonRecords()) ?? []).filter { $0["type"] as? String == "fin_wait2" }.count >= 2
    })
    XCTAssertEqual(try finwait.stop(), 0)
    let records = try finwait.jsonRecords().filter { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == 45_001 }
    XCTAssertEqual(records.count, 2, "\(records)")
    let byNamespace = Dictionary(records.map { ($0["netns"] as? Int ?? 0, $0) }, uniquingKeysWith: { x, _ in x })
    XCTAssertEqual(Set(byNamespace.keys), [a.inode, b.inode])
    XCTAssertEqual(byNamespace[a.inode]?["pid"] as? Int, truthA.ownerPid)
    XCTAssertEqual(byNamespace[b.inode]?["pid"] as? Int, truthB.ownerPid)
    // Each connection's peer is the one in its own namespace, not the twin.
    XCTAssertEqual(byNamespace[a.inode]?["peer_pid"] as? Int, truthA.ownerPid)
    XCTAssertEqual(byNamespace[b.inode]?["peer_pid"] as? Int, truthB.ownerPid)
  }
}

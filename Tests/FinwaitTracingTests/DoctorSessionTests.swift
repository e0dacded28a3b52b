import FinwaitCore
import Foundation
import XCTest
@testable import FinwaitTracing

/// Owners from the scripted socket table, everything else unknown: what a
/// node gives the doctor without conntrack, settings or pods.
final class ScriptedSources: DoctorSources {
  let sockets: ScriptedSockets
  var warnings: [String] = []
  private(set) var refreshes = 0

  init(_ sockets: ScriptedSockets) { self.sockets = sockets }

  func refresh() { refreshes += 1 }
  func takeWarnings() -> [String] {
    defer { warnings = [] }
    return warnings
  }
  func owner(ofInode inode: UInt32) -> Owner? { sockets.ownerTable[inode] }
  func labels(of owner: Owner) -> OwnerLabels { OwnerLabels(comm: owner.comm) }
  func settings(netns: UInt32, endpoints: Endpoints) -> SocketSettings? { nil }
  func conntrack(netns: UInt32, endpoints: Endpoints) -> ConntrackMatch? { nil }
  func program(of owner: Owner) -> KnownProgram? { nil }
}

/// The doctor session with scripted sockets, clock and sleeps: what it reads,
/// when it runs again, and what it writes, without root.
final class DoctorSessionTests: XCTestCase {
  let sockets = ScriptedSockets()
  let stdout = CapturedLines()
  let stderr = CapturedLines()
  let clock = ManualClock()
  var sleeps: [UInt64] = []
  /// Sleeps allowed before a "signal" stops the watch.
  var sleepsBeforeStop = 0

  func environment(_ sources: ScriptedSources) -> DoctorEnvironment {
    DoctorEnvironment(
      sockets: sockets, nodeNetns: 1, sysctls: { TCPSysctls(finTimeout: $0 == 1 ? 60 * s : 20 * s) },
      sources: sources, stdout: stdout, stderr: stderr, clock: { [clock] in clock.now },
      wallClock: WallClock(offset: 0),
      sleep: { [unowned self] ns in
        sleeps.append(ns)
        clock.now += ns
        guard sleeps.count <= sleepsBeforeStop else { return false }
        return true
      },
      stopRequested: { false })
  }

  override func setUp() {
    let server = Endpoints(local: .v4(127, 0, 0, 1), localPort: 8080, remote: .v4(127, 0, 0, 1), remotePort: 40000)
    sockets.sockets = [
      1: [DiagSocket(state: .finWait2, endpoints: server.reversed, inode: 5, lastAckReceivedMilliseconds: 3_000),
          DiagSocket(state: .closeWait, endpoints: server, inode: 6, lastAckReceivedMilliseconds: 3_000)],
      2: [DiagSocket(state: .finWait2, endpoints: server.reversed, timer: 3, expiresMilliseconds: 15_000)],
    ]
    sockets.ownerTable = [5: Owner(pid: 10, tid: 10, comm: "client", cgroupID: 0),
                          6: Owner(pid: 20, tid: 20, comm: "server", cgroupID: 0)]
  }

  func testOneRunReadsEveryNamespaceAndPrintsTheCulpritFirst() throws {
    let sources = ScriptedSources(sockets)
    try DoctorSession(DoctorSession.Options(), environment: environment(sources)).run()
    XCTAssertEqual(sockets.dumps, 3, "one round trip to check sock_diag, then one dump per namespace")
    XCTAssertEqual(sleeps, [], "once, no watch")
    XCTAssertEqual(sources.refreshes, 1)
    let text = stdout.lines.joined(separator: "\n")
    XCTAssertTrue(stdout.lines[0].hasPrefix("finwait doctor: 2 in FIN_WAIT2, 1 in CLOSE_WAIT, 2 network namespaces"), text)
    XCTAssertTrue(text.contains("1. LEAK peer_close_wait: 1 connection"), text)
    XCTAssertTrue(text.contains("culprit: server (pid 20)"), text)
    XCTAssertTrue(text.contains("2. BOUNDED orphaned"), text)
    XCTAssertTrue(text.contains("by tcp_fin_timeout (20.00s) of its network namespace (the node's is 1m00s)"), text)
    XCTAssertEqual(stderr.lines, [])
  }

  func testWatchRunsAgainEveryIntervalUntilStoppedAndSaysWhatItCouldNotRead() throws {
    sleepsBeforeStop = 2
    let sources = ScriptedSources(sockets)
    sources.warnings = ["without CAP_NET_ADMIN, conntrack is not read"]
    var options = DoctorSession.Options()
    options.json = true
    options.watch = 5 * s
    var runs = 0
    sockets.onDump = { [sockets] netns in
      // The orphan's namespace is empty in the second run (its orphan freed) and gone in the third.
      if netns == 2 { runs += 1 }
      if runs >= 2 { sockets.sockets[2] = nil }
    }
    try DoctorSession(options, environment: environment(sources)).run()
    XCTAssertEqual(sleeps, [5 * s, 5 * s, 5 * s], "two full waits, then the stop")
    XCTAssertEqual(stdout.lines.count, 3, "one JSON object per run")
    let objects = try stdout.lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    XCTAssertEqual(objects.map { $0["namespaces"] as? Int }, [2, 2, 1])
    XCTAssertEqual(objects.map { ($0["groups"] as? [Any])?.count }, [2, 1, 1])
    XCTAssertEqual(stderr.lines, ["finwait: warning: without CAP_NET_ADMIN, conntrack is not read"], "said once")
  }

  func testANamespaceThatCannotBeReadIsNamedOnceInAWatch() throws {
    sleepsBeforeStop = 2
    sockets.unenterable = [7]
    // In the second run, another one appears: it is read (and named) from the third.
    var dumps = 0  // of our own namespace: the check that sock_diag works, then one a run
    sockets.onDump = { [sockets] netns in
      guard netns == 1 else { return }
      dumps += 1
      if dumps == 3 { sockets.unenterable.insert(8) }
    }
    var options = DoctorSession.Options()
    options.watch = 1 * s
    try DoctorSession(options, environment: environment(ScriptedSources(sockets))).run()
    XCTAssertEqual(dumps, 4, "the check, then three runs")
    XCTAssertEqual(stderr.lines, [
      "finwait: warning: 1 network namespace could not be read (entering one needs CAP_SYS_ADMIN): 7",
      "finwait: warning: 1 network namespace could not be read (entering one needs CAP_SYS_ADMIN): 8",
    ])
  }

  func testNetnsFiltersTheReportNotWhatIsRead() throws {
    var options = DoctorSession.Options()
    options.filter.netns = 2
    try DoctorSession(options, environment: environment(ScriptedSources(sockets))).run()
    let text = stdout.lines.joined(separator: "\n")
    XCTAssertTrue(stdout.lines[0].hasPrefix("finwait doctor: 2 in FIN_WAIT2, 1 in CLOSE_WAIT, 2 network namespaces;"), text)
    XCTAssertTrue(text.contains("1. BOUNDED orphaned"), text)
    XCTAssertFalse(text.contains("peer_close_wait"), "netns 1's connection is filtered out: \(text)")
  }

  /// A pod's connection whose peer is another pod on the node: filtered to
  /// the first pod's namespace, the peer in the second still decides the
  /// verdict, and the connection is shown when either end is in the filter.
  func testNetnsKeepsTheVerdictOfAPeerInAnotherNamespace() throws {
    let pod = Endpoints(local: .v4(10, 0, 0, 1), localPort: 40001, remote: .v4(10, 0, 0, 2), remotePort: 8080)
    sockets.sockets = [
      1: [],
      3: [DiagSocket(state: .finWait2, endpoints: pod, inode: 5, lastAckReceivedMilliseconds: 3_000)],
      4: [DiagSocket(state: .closeWait, endpoints: pod.reversed, inode: 6, lastAckReceivedMilliseconds: 3_000)],
    ]
    for netns: UInt32 in [3, 4] {
      let start = stdout.lines.count
      var options = DoctorSession.Options()
      options.filter.netns = netns
      try DoctorSession(options, environment: environment(ScriptedSources(sockets))).run()
      let text = stdout.lines[start...].joined(separator: "\n")
      XCTAssertTrue(text.contains("1. LEAK peer_close_wait: 1 connection"), "--netns \(netns): \(text)")
      XCTAssertTrue(text.contains("culprit: server (pid 20)"), "--netns \(netns): \(text)")
    }
    let start = stdout.lines.count
    var options = DoctorSession.Options()
    options.filter.netns = 1
    try DoctorSession(options, environment: environment(ScriptedSources(sockets))).run()
    XCTAssertTrue(stdout.lines[start...].contains("Nothing to diagnose: none of them matches the filters."), "\(stdout.lines)")
  }

  func testAClosedReaderStopsTheWatch() throws {
    sleepsBeforeStop = 10
    stdout.readerGone = true
    var options = DoctorSession.Options()
    options.watch = 1 * s
    try DoctorSession(options, environment: environment(ScriptedSources(sockets))).run()
    XCTAssertEqual(sleeps, [])
  }
}

import CFinwaitEvent
import FinwaitTestSupport
import Foundation
import XCTest
@testable import FinwaitCore

/// What the doctor's seam answers in tests: dictionaries instead of /proc,
/// the BPF iterator and conntrack.
private final class FakeLookups: DoctorLookups {
  var owners: [UInt32: Owner] = [:]
  var pods: [UInt32: OwnerLabels] = [:]
  var settings: [Endpoints: SocketSettings] = [:]
  var conntrack: [Endpoints: ConntrackMatch] = [:]
  var programs: [UInt32: KnownProgram] = [:]
  var conntrackAsked: [Endpoints] = []
  var traced: [Endpoints: TracedClose] = [:]

  func owner(ofInode inode: UInt32) -> Owner? { owners[inode] }
  func labels(of owner: Owner) -> OwnerLabels { pods[owner.pid] ?? OwnerLabels(comm: owner.comm) }
  func settings(netns: UInt32, endpoints: Endpoints) -> SocketSettings? { settings[endpoints] }
  func conntrack(netns: UInt32, endpoints: Endpoints) -> ConntrackMatch? {
    conntrackAsked.append(endpoints)
    return conntrack[endpoints]
  }
  func program(of owner: Owner) -> KnownProgram? { programs[owner.pid] }
  func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose? { traced[endpoints] }
}

final class DoctorTests: XCTestCase {
  let s: UInt64 = 1_000_000_000
  let ms: UInt64 = 1_000_000
  let sysctls = TCPSysctls(finTimeout: 60_000_000_000, keepaliveTime: 7_200_000_000_000,
                           keepaliveInterval: 75_000_000_000, keepaliveProbes: 9)
  private var lookups = FakeLookups()

  override func setUp() {
    lookups = FakeLookups()
    lookups.owners = [11: owner(100, "client"), 22: owner(200, "server"), 33: owner(300, "proxy")]
  }

  func owner(_ pid: UInt32, _ comm: String) -> Owner { Owner(pid: pid, tid: pid, comm: comm, cgroupID: 0) }

  func loopback(_ local: UInt16, _ remote: UInt16) -> Endpoints {
    Endpoints(local: .v4(127, 0, 0, 1), localPort: local, remote: .v4(127, 0, 0, 1), remotePort: remote)
  }

  func remote(_ local: UInt16) -> Endpoints {
    Endpoints(local: .v4(10, 0, 0, 1), localPort: local, remote: .v4(192, 0, 2, 7), remotePort: 443)
  }

  /// A full socket in FIN_WAIT2 whose last ACK (ours, acknowledged) came `ackAgo` ms ago.
  func finWait2(_ e: Endpoints, inode: UInt32, ackAgo: UInt32 = 90_000, dataAgo: UInt32 = 95_000,
                bytes: UInt64 = 512, timer: UInt8 = 0, expires: UInt32 = 0, probes: UInt8 = 0) -> DiagSocket {
    DiagSocket(state: .finWait2, endpoints: e, inode: inode, timer: timer, expiresMilliseconds: expires,
               lastAckReceivedMilliseconds: ackAgo, timerRetransmits: probes,
               tcp: TCPInfo(options: [.sack, .timestamps], probes: probes, lastDataSentMilliseconds: 95_000,
                            lastDataReceivedMilliseconds: dataAgo, lastAckReceivedMilliseconds: ackAgo,
                            bytesReceived: bytes))
  }

  func diagnose(_ dumps: [(netns: UInt32, sockets: [DiagSocket])], sysctls extra: [UInt32: TCPSysctls] = [:],
                filter: KernelConfig = KernelConfig()) -> Diagnosis {
    var all: [UInt32: TCPSysctls] = [1: sysctls]
    all.merge(extra) { $1 }
    return Doctor.diagnose(DoctorInput(now: 10_000 * s, nodeNetns: 1, sysctls: all, dumps: dumps),
                           lookups: lookups, filter: filter)
  }

  func testAttachedAfterShutdownWithASilentRemotePeerIsALeakWithNoDeadline() throws {
    let d = diagnose([(1, [finWait2(remote(40000), inode: 11)])])
    XCTAssertEqual(d.groups.count, 1)
    let g = d.groups[0]
    XCTAssertEqual(g.verdict, .attachedAfterShutdown)
    XCTAssertEqual(g.severity, .leak)
    XCTAssertEqual(g.culprit?.comm, "client")
    let f = g.findings[0]
    XCTAssertFalse(f.orphaned)
    XCTAssertNil(f.deadline, "no timer applies to an attached FIN_WAIT2 socket")
    XCTAssertNil(f.peer)
    XCTAssertFalse(f.keepaliveArmed)
    XCTAssertEqual(f.dwellAtLeast, 90 * s)
    XCTAssertNil(f.path, "settings unread: how it was shut down is not known")
    let why = DoctorFormat(clock: WallClock(offset: 0)).why(g, first: f, diagnosis: d)
    XCTAssertTrue(why.contains("tcp_fin_timeout (1m00s) does not apply"), why)
    XCTAssertTrue(why.contains("keepalive is off"), why)
  }

  func testKeepaliveTimerGivesAnUpperBoundAndUnansweredProbesMeanThePeerIsGone() throws {
    // A keepalive timer, the socket's settings unread: they may override the sysctls, so no deadline.
    var d = diagnose([(1, [finWait2(remote(40000), inode: 11, timer: 2, expires: 30_000)])])
    XCTAssertEqual(d.groups[0].verdict, .attachedAfterShutdown)
    XCTAssertNil(d.groups[0].findings[0].deadline)
    XCTAssertTrue(d.groups[0].findings[0].keepaliveArmed)

    // SO_KEEPALIVE with the namespace's values: next probe in 30 s, then 9 probes 75 s apart.
    lookups.settings[remote(40000)] = SocketSettings(endpoints: remote(40000), state: .finWait2, inode: 11, keepalive: true)
    d = diagnose([(1, [finWait2(remote(40000), inode: 11, timer: 2, expires: 30_000)])])
    XCTAssertEqual(d.groups[0].findings[0].deadline,
                   Finding.Deadline(after: 30 * s + 9 * 75 * s, cause: .keepalive, atMost: false))

    // One probe out may be in flight to a live peer: not yet unresponsive.
    d = diagnose([(1, [finWait2(remote(40000), inode: 11, timer: 2, expires: 70_000, probes: 1)])])
    XCTAssertEqual(d.groups[0].verdict, .attachedAfterShutdown)
    XCTAssertEqual(d.groups[0].findings[0].deadline,
                   Finding.Deadline(after: 70 * s + 8 * 75 * s, cause: .keepalive, atMost: false))

    // Three probes out, the socket's own TCP_KEEPINTVL 5 s and TCP_KEEPCNT 4.
    lookups.settings[remote(40000)] = SocketSettings(
      endpoints: remote(40000), state: .finWait2, inode: 11, keepalive: true, keepaliveIdle: 10 * s,
      keepaliveInterval: 5 * s, keepaliveProbes: 4, probesOut: 3)
    d = diagnose([(1, [finWait2(remote(40000), inode: 11, timer: 2, expires: 2_000, probes: 3)])])
    XCTAssertEqual(d.groups[0].verdict, .peerUnresponsive)
    XCTAssertEqual(d.groups[0].severity, .bounded)
    XCTAssertEqual(d.groups[0].findings[0].path, .shutdownWrite, "no receive shutdown: SHUT_WR")
    XCTAssertEqual(d.groups[0].findings[0].deadline, Finding.Deadline(after: 2 * s + 1 * 5 * s, cause: .keepalive, atMost: false))

    // TCP_USER_TIMEOUT 60 s instead of the probe count: the peer last heard 40 s ago, a probe
    // out, the timer fires in 2 s (42 s), then every 5 s: the first firing at >= 60 s is at 62 s.
    lookups.settings[remote(40000)]?.userTimeoutMilliseconds = 60_000
    d = diagnose([(1, [finWait2(remote(40000), inode: 11, ackAgo: 40_000, dataAgo: 45_000, timer: 2, expires: 2_000,
                                probes: 3)])])
    XCTAssertEqual(d.groups[0].findings[0].deadline, Finding.Deadline(after: 2 * s + 4 * 5 * s, cause: .keepalive, atMost: false))
  }

  func testPeerStillSendingIsAHealthyHalfCloseEvenWithItsCloseWaitLocal() {
    let ours = finWait2(loopback(40000, 8080), inode: 11, ackAgo: 5, dataAgo: 5, bytes: 1_000_000)
    let peer = DiagSocket(state: .closeWait, endpoints: loopback(8080, 40000), inode: 22, lastAckReceivedMilliseconds: 5,
                          tcp: TCPInfo(lastDataSentMilliseconds: 5))
    let d = diagnose([(1, [ours, peer])])
    XCTAssertEqual(d.groups.map(\.verdict), [.halfClose], "the peer's CLOSE_WAIT is part of the same half-close")
    XCTAssertEqual(d.groups[0].severity, .healthy)
    XCTAssertEqual(d.closeWait, 1)
  }

  func testNeverReceivedDataIsNotAHalfCloseHoweverYoung() {
    let d = diagnose([(1, [finWait2(remote(40000), inode: 11, ackAgo: 5, dataAgo: 5, bytes: 0)])])
    XCTAssertEqual(d.groups[0].verdict, .attachedAfterShutdown)
  }

  func testLocalPeerInCloseWaitIsBlamedWhereverItLives() throws {
    let ours = finWait2(Endpoints(local: .v4(10, 1, 0, 1), localPort: 40000, remote: .v4(10, 1, 0, 2), remotePort: 8080),
                        inode: 11)
    let peer = DiagSocket(state: .closeWait, endpoints: ours.endpoints.reversed, inode: 22,
                          lastAckReceivedMilliseconds: 89_000)
    let d = diagnose([(1, [ours]), (2, [peer])])
    XCTAssertEqual(d.groups.count, 1, "the peer's CLOSE_WAIT is not a second group")
    let g = d.groups[0]
    XCTAssertEqual(g.verdict, .peerCloseWait)
    XCTAssertEqual(g.culprit?.comm, "server", "the program that never closed is the culprit")
    let p = try XCTUnwrap(g.findings[0].peer)
    XCTAssertEqual(p.netns, 2)
    XCTAssertFalse(p.viaNAT)
    XCTAssertEqual(p.closeWaitAtLeast, 89 * s)
  }

  func testLoopbackPeerIsOnlySoughtInTheSameNamespace() {
    let ours = finWait2(loopback(40000, 8080), inode: 11)
    let elsewhere = DiagSocket(state: .closeWait, endpoints: loopback(8080, 40000), inode: 22)
    let d = diagnose([(1, [ours]), (2, [elsewhere])])
    XCTAssertEqual(Set(d.groups.map(\.verdict)), [.attachedAfterShutdown, .closeWait])
  }

  func testPeerBehindADNATIsFoundThroughConntrackAndItsExpiryWarned() throws {
    // Client 10.244.0.5:40000 -> service 10.96.0.10:80, DNAT to backend 10.244.1.7:8080.
    let client = Endpoints(local: .v4(10, 244, 0, 5), localPort: 40000, remote: .v4(10, 96, 0, 10), remotePort: 80)
    let backend = Endpoints(local: .v4(10, 244, 1, 7), localPort: 8080, remote: .v4(10, 244, 0, 5), remotePort: 40000)
    let entry = ConntrackEntry(
      original: client, reply: Endpoints(local: backend.local, localPort: 8080, remote: client.local, remotePort: 40000),
      state: .closeWait, timeoutSeconds: 40, status: 1 << 5)
    lookups.conntrack[client] = ConntrackMatch(netns: 1, entry: entry)
    let d = diagnose([(1, [finWait2(client, inode: 11)]), (2, [DiagSocket(state: .closeWait, endpoints: backend, inode: 22)])])
    XCTAssertEqual(d.groups.count, 1)
    let f = d.groups[0].findings[0]
    XCTAssertEqual(d.groups[0].verdict, .peerCloseWait)
    XCTAssertEqual(d.groups[0].culprit?.comm, "server")
    XCTAssertEqual(f.peer?.viaNAT, true)
    XCTAssertEqual(f.peer?.netns, 2)
    XCTAssertTrue(f.conntrackExpiresFirst, "attached: no deadline, the 40 s entry goes first")
    let text = DoctorFormat(clock: WallClock(offset: 0)).text(d).joined(separator: "\n")
    XCTAssertTrue(text.contains("nf_conntrack_tcp_timeout_close_wait"), text)
    XCTAssertTrue(text.contains("through NAT"), text)
  }

  func testConntrackIsNotAskedForLoopbackAndNATlessEntriesDoNotWarn() {
    let e = remote(40000)
    lookups.conntrack[e] = ConntrackMatch(netns: 1, entry: ConntrackEntry(original: e, reply: e.reversed, timeoutSeconds: 1))
    let d = diagnose([(1, [finWait2(loopback(40001, 8080), inode: 11), finWait2(e, inode: 33)])])
    XCTAssertEqual(lookups.conntrackAsked, [e])
    XCTAssertFalse(d.groups.flatMap(\.findings).contains(where: \.conntrackExpiresFirst))
  }

  func testOrphanInTimewaitEndsByItsNamespacesFinTimeoutOrALongerLinger2() throws {
    let inTimewait = DiagSocket(state: .finWait2, endpoints: remote(40000), timer: 3, expiresMilliseconds: 12_000)
    var d = diagnose([(7, [inTimewait])], sysctls: [7: TCPSysctls(finTimeout: 20 * s)])
    var f = d.groups[0].findings[0]
    XCTAssertEqual(d.groups[0].verdict, .orphaned)
    XCTAssertNil(d.groups[0].culprit)
    XCTAssertEqual(f.deadline, Finding.Deadline(after: 12 * s, cause: .finTimeout, atMost: true))
    XCTAssertEqual(f.dwellAtLeast, 8 * s, "its namespace's 20 s minus the 12 s left")
    let why = DoctorFormat(clock: WallClock(offset: 0)).why(d.groups[0], first: f, diagnosis: d)
    XCTAssertTrue(why.contains("the node's is 1m00s"), why)

    let longer = DiagSocket(state: .finWait2, endpoints: remote(40000), timer: 3, expiresMilliseconds: 50_000)
    d = diagnose([(7, [longer])], sysctls: [7: TCPSysctls(finTimeout: 20 * s)])
    XCTAssertEqual(d.groups[0].findings[0].deadline?.cause, .linger2, "more time left than the sysctl gives")

    // TCP_LINGER2 of 90 s: a full orphan with a keepalive timer for 30 s, then 30 s in timewait.
    lookups.settings[remote(40001)] = SocketSettings(endpoints: remote(40001), state: .finWait2,
                                                     linger2: .nanoseconds(90 * s))
    let full = DiagSocket(state: .finWait2, endpoints: remote(40001), timer: 2, expiresMilliseconds: 25_000)
    d = diagnose([(1, [full])])
    f = d.groups[0].findings[0]
    XCTAssertEqual(f.deadline, Finding.Deadline(after: 25 * s + 30 * s, cause: .linger2, atMost: true))

    // A fin timeout of 90 s: 30 s as a full socket, then 30 s in timewait. 10 s left
    // there means at least 30 + 20 s in FIN_WAIT2; 40 s left cannot come from it.
    let late = DiagSocket(state: .finWait2, endpoints: remote(40002), timer: 3, expiresMilliseconds: 10_000)
    let long = DiagSocket(state: .finWait2, endpoints: remote(40003), timer: 3, expiresMilliseconds: 40_000)
    d = diagnose([(7, [late, long])], sysctls: [7: TCPSysctls(finTimeout: 90 * s)])
    let byPort = Dictionary(uniqueKeysWithValues: d.groups.flatMap(\.findings).map { ($0.socket.endpoints.localPort, $0) })
    XCTAssertEqual(byPort[40002]?.dwellAtLeast, 50 * s)
    XCTAssertEqual(byPort[40002]?.deadline?.cause, .finTimeout)
    XCTAssertEqual(byPort[40003]?.dwellAtLeast, 0)
    XCTAssertEqual(byPort[40003]?.deadline?.cause, .linger2)
  }

  func testCloseWaitWithARemotePeerBlamesItsOwnerUnlessItIsStillSending() {
    let leak = DiagSocket(state: .closeWait, endpoints: remote(8080), inode: 33, lastAckReceivedMilliseconds: 600_000,
                          tcp: TCPInfo(lastDataSentMilliseconds: 600_000))
    let sending = DiagSocket(state: .closeWait, endpoints: remote(8081), inode: 33, lastAckReceivedMilliseconds: 10,
                             tcp: TCPInfo(lastDataSentMilliseconds: 10))
    let d = diagnose([(1, [leak, sending])])
    XCTAssertEqual(d.groups.map(\.verdict), [.closeWait, .halfClose])
    XCTAssertEqual(d.groups[0].culprit?.comm, "proxy")
    XCTAssertEqual(d.groups[0].findings[0].dwellAtLeast, 600 * s)
  }

  func testGroupsByCulpritPodFirstMostUrgentBiggestOldest() {
    lookups.owners[44] = owner(400, "client")
    lookups.pods[100] = OwnerLabels(namespace: "shop", pod: "web-1", container: "app", comm: "client")
    lookups.pods[400] = OwnerLabels(namespace: "shop", pod: "web-1", container: "app", comm: "client")
    let d = diagnose([(1, [
      finWait2(remote(40000), inode: 11, ackAgo: 10_000),
      finWait2(remote(40001), inode: 44, ackAgo: 20_000),
      finWait2(remote(40002), inode: 33, ackAgo: 900_000),
      DiagSocket(state: .finWait2, endpoints: remote(40003), timer: 3, expiresMilliseconds: 1_000),
      finWait2(remote(40004), inode: 33, ackAgo: 5, dataAgo: 5),
    ])])
    XCTAssertEqual(d.groups.map(\.verdict), [.attachedAfterShutdown, .attachedAfterShutdown, .orphaned, .halfClose])
    XCTAssertEqual(d.groups[0].findings.count, 2, "two processes of one pod are one culprit")
    XCTAssertEqual(d.groups[0].findings.map(\.dwellAtLeast), [20 * s, 10 * s], "oldest first")
    XCTAssertEqual(d.groups[1].culprit?.comm, "proxy")
    XCTAssertEqual(d.finWait2, 5)
  }

  func testFiltersKeepConnectionsWhereEitherEndMatches() {
    let ours = finWait2(loopback(40000, 8080), inode: 11)
    let peer = DiagSocket(state: .closeWait, endpoints: loopback(8080, 40000), inode: 22)
    var filter = KernelConfig()
    filter.comm = "server"
    XCTAssertEqual(diagnose([(1, [ours, peer])], filter: filter).groups.map(\.verdict), [.peerCloseWait])
    filter.comm = "nobody"
    XCTAssertEqual(diagnose([(1, [ours, peer])], filter: filter).groups.count, 0)
    filter = KernelConfig()
    filter.port = 9999
    XCTAssertEqual(diagnose([(1, [ours, peer])], filter: filter).groups.count, 0)
  }

  func testSysctlsAreReadFromTheirFilesAndUnreadableOnesStayUnknown() {
    let files: [TCPSysctls.Name: String] = [.finTimeout: "30\n", .keepaliveTime: "600\n", .keepaliveProbes: "5"]
    XCTAssertEqual(TCPSysctls { files[$0] },
                   TCPSysctls(finTimeout: 30 * s, keepaliveTime: 600 * s, keepaliveInterval: nil, keepaliveProbes: 5))
    XCTAssertEqual(TCPSysctls { _ in "garbage" }, TCPSysctls())
  }

  func testJSONIsOneObjectWithEveryGroupAndConnection() throws {
    let ours = finWait2(loopback(40000, 8080), inode: 11)
    let peer = DiagSocket(state: .closeWait, endpoints: loopback(8080, 40000), inode: 22, lastAckReceivedMilliseconds: 3)
    let d = diagnose([(1, [ours, peer]), (2, [finWait2(remote(40001), inode: 33)])])
    let line = DoctorFormat(clock: WallClock(offset: 0)).json(d)
    XCTAssertFalse(line.contains("\n"))
    XCTAssertTrue(line.hasPrefix(#"{"type":"doctor","time":"#), line)
    XCTAssertTrue(line.contains(#""verdict":"peer_close_wait","severity":"leak","count":1"#), line)
    XCTAssertTrue(line.contains(#""culprit":{"pid":200,"comm":"server"}"#), line)
    XCTAssertTrue(line.contains(#""peer":{"netns":1,"saddr":"127.0.0.1","sport":8080"#), line)
    XCTAssertTrue(line.contains(#""wscale":null"#), line)
    XCTAssertTrue(line.contains(#""sysctls":{"1":{"tcp_fin_timeout_ns":60000000000"#), line)
  }

  func testTextFitsOneScreenAndSaysWhenThereIsNothing() {
    let format = DoctorFormat(clock: WallClock(offset: 0))
    let empty = format.text(diagnose([(1, [])]))
    XCTAssertEqual(empty.count, 2)
    XCTAssertTrue(empty[1].hasPrefix("Nothing to diagnose"))
    // The longest groups there are: a known program's advice, a pod, a call
    // site of many frames, a namespace with its own sysctls; 40 of them.
    var many: [DiagSocket] = []
    let frames = (0..<20).map { StackFrame(address: UInt64(0x5500_0000_0000 + $0), module: "/srv/app", symbol: "handler_\($0)", offset: 0x10) }
    let programs: [KnownProgram] = [.nginx, .haproxy, .envoy, .kubeProxy, .go]
    for i in 0..<40 {
      let pid = UInt32(1000 + i)
      lookups.owners[pid] = owner(pid, "app\(i)")
      lookups.programs[pid] = programs[i % programs.count]
      lookups.pods[pid] = OwnerLabels(namespace: "shop", pod: "web-\(i)-5d8f7c9b4-x2k7q", container: "app", comm: "app\(i)")
      lookups.traced[remote(UInt16(41000 + i))] = TracedClose(
        path: .shutdownWrite, syscall: .shutdown, closer: owner(pid, "app\(i)"), finWait2At: nil,
        stack: CallStack(id: Int16(i), frames: frames))
      many.append(finWait2(remote(UInt16(41000 + i)), inode: pid))
      many.append(finWait2(remote(UInt16(42000 + i)), inode: pid))
    }
    let d = diagnose([(2, many)], sysctls: [2: TCPSysctls(finTimeout: 20 * s)])
    XCTAssertEqual(d.groups.count, 40)
    let lines = format.text(d)
    let screen = DoctorFormat.Screen.standard
    XCTAssertLessThanOrEqual(lines.reduce(0) { $0 + screen.rows($1) }, screen.rows, "wrapped at \(screen.columns): \(lines)")
    let shown = lines.filter { $0.hasPrefix("   culprit: ") }.count
    XCTAssertGreaterThanOrEqual(shown, 2, "\(lines)")
    XCTAssertEqual(lines.last, "\(40 - shown) more groups: see -v or --json, or narrow with --pid/--comm/--port/--netns.")
    XCTAssertTrue(lines.contains { $0.hasPrefix("netns 2: tcp_fin_timeout 20.00s") }, "\(lines)")
    XCTAssertEqual(lines.filter { $0.contains("call site: ") }.count, shown, "the group's line; its example does not repeat it")
    // -v: everything.
    var verbose = format
    verbose.screen = nil
    verbose.maxGroups = .max
    XCTAssertEqual(verbose.text(d).filter { $0.hasPrefix("   culprit: ") }.count, 40)
  }

  // MARK: A running trace

  let site = CallStack(id: 3, frames: [
    StackFrame(address: 0x7f00_0000_1007, module: "/usr/lib/libc.so.6", symbol: "shutdown", offset: 7),
    StackFrame(address: 0x5500_0000_1010, module: "/srv/app", symbol: "finish", offset: 0x10, recovered: true),
    StackFrame(address: 0x5500_0000_2000, module: "/srv/app", symbol: "main"),
  ])

  func testARunningTraceGivesThePathTheCallSiteAndAnExactDwell() throws {
    // Settings unread: only the trace knows how it was shut down.
    lookups.traced[remote(40000)] = TracedClose(path: .shutdownWrite, syscall: .shutdown, closer: owner(100, "client"),
                                                finWait2At: 10_000 * s - 90_500 * ms, stack: site)
    let d = diagnose([(1, [finWait2(remote(40000), inode: 11)])])
    let f = try XCTUnwrap(d.groups.first?.findings.first)
    XCTAssertEqual(f.verdict, .attachedAfterShutdown)
    XCTAssertTrue(f.dwellExact)
    XCTAssertEqual(f.dwellAtLeast, 90_500 * ms, "from the trace's FIN_WAIT2 entry, not the last ACK (90 s)")
    XCTAssertEqual(f.path, .shutdownWrite)
    let text = DoctorFormat(clock: WallClock(offset: 0)).text(d)
    XCTAssertTrue(text.contains("1. LEAK attached_after_shutdown: 1 connection, oldest 1m30s"), "\(text)")
    XCTAssertTrue(text.contains("   call site: libc.so.6:shutdown+0x7<app:finish+0x10<app:main (1 of 1, seen by a running finwait trace)"),
                  "\(text)")
    XCTAssertTrue(text.contains { $0.hasPrefix("   - 10.0.0.1:40000 -> 192.0.2.7:443 FIN_WAIT2 1m30s held by client (pid 100) after shutdown(SHUT_WR)") },
                  "\(text)")
    XCTAssertFalse(text.contains { $0.hasPrefix("     call site: ") }, "the group's line names it once: \(text)")
    let json = DoctorFormat(clock: WallClock(offset: 0)).json(d)
    XCTAssertTrue(json.contains(#""dwell_ns":90500000000,"dwell_lower_bound":false"#), json)
    XCTAssertTrue(json.contains(#""trace":{"path":"shutdown_wr","syscall":"shutdown","closer":{"pid":100,"comm":"client"},"stack":[{"address":"0x7f0000001007""#), json)
  }

  func testAnOrphanNamesItsCloserAndTheCallFromATrace() throws {
    let orphan = DiagSocket(state: .finWait2, endpoints: remote(40002), timer: 2, expiresMilliseconds: 25_000,
                            lastAckReceivedMilliseconds: 4_000)
    lookups.traced[remote(40002)] = TracedClose(path: .close, syscall: .dup2, closer: owner(200, "server"), finWait2At: nil)
    let d = diagnose([(1, [orphan])])
    let f = try XCTUnwrap(d.groups.first?.findings.first)
    XCTAssertEqual(f.verdict, .orphaned)
    XCTAssertEqual(f.path, .close)
    XCTAssertFalse(f.dwellExact, "FIN_WAIT2 not seen by the trace: the lower bound stays")
    XCTAssertEqual(f.dwellAtLeast, 4 * s)
    XCTAssertNil(d.groups[0].culprit, "orphans stay grouped by namespace")
    let text = DoctorFormat(clock: WallClock(offset: 0)).text(d)
    XCTAssertTrue(text.contains { $0.hasPrefix("   - 10.0.0.1:40002 -> 192.0.2.7:443 FIN_WAIT2 >=4.00s orphaned after dup2() by server (pid 200)") },
                  "\(text)")
    XCTAssertFalse(text.contains { $0.contains("call site") }, "no stack captured: \(text)")
  }

  func testATraceEntryNewerThanTheDumpIsNoExactDwell() throws {
    lookups.traced[remote(40000)] = TracedClose(path: .shutdownWrite, syscall: .shutdown, closer: nil,
                                                finWait2At: 10_000 * s + 1)
    let f = try XCTUnwrap(diagnose([(1, [finWait2(remote(40000), inode: 11)])]).groups.first?.findings.first)
    XCTAssertFalse(f.dwellExact)
    XCTAssertEqual(f.dwellAtLeast, 90 * s)
  }

  func testTracedCloseDecodesAMapEntryWithItsStartWhenSeen() {
    var entry = fw_event()
    entry.family = 2
    entry.path = UInt8(FW_PATH_SHUTDOWN_RDWR.rawValue)
    entry.syscall = UInt8(FW_SYSCALL_SHUTDOWN.rawValue)
    entry.tgid = 7
    entry.flags = UInt8(FW_FLAG_OWNER_KNOWN)
    // FIN_WAIT2 not seen (a skipped run; sock_diag shows it in FIN_WAIT2): how, but no start.
    XCTAssertEqual(TracedClose(entry: entry)?.path, .shutdownReadWrite)
    XCTAssertNil(TracedClose(entry: entry)?.finWait2At)
    entry.flags |= UInt8(FW_FLAG_FIN_WAIT2_SEEN)
    entry.ts_fin_wait2_ns = 5 * s
    let traced = TracedClose(entry: entry)
    XCTAssertEqual(traced?.path, .shutdownReadWrite)
    XCTAssertEqual(traced?.syscall, .shutdown)
    XCTAssertEqual(traced?.closer?.pid, 7)
    XCTAssertEqual(traced?.finWait2At, 5 * s)
    entry.flags |= UInt8(FW_FLAG_FIN_WAIT2_INFERRED)
    XCTAssertNil(TracedClose(entry: entry)?.finWait2At, "inferred at the tracer's start: no exact dwell")
    entry.family = 1
    XCTAssertNil(TracedClose(entry: entry), "not an IP family")
  }

  /// Every verdict, every optional object filled and empty, against docs/doctor.schema.json.
  func testJSONOfEveryVerdictMatchesTheSchema() throws {
    let client = Endpoints(local: .v4(10, 244, 0, 5), localPort: 40000, remote: .v4(10, 96, 0, 10), remotePort: 80)
    let backend = Endpoints(local: .v4(10, 244, 1, 7), localPort: 8080, remote: .v4(10, 244, 0, 5), remotePort: 40000)
    lookups.conntrack[client] = ConntrackMatch(netns: 1, entry: ConntrackEntry(
      original: client, reply: backend, state: .closeWait, timeoutSeconds: 40, status: 1 << 5))
    lookups.settings[remote(40001)] = SocketSettings(
      endpoints: remote(40001), state: .finWait2, inode: 11, keepalive: true, keepaliveIdle: 10 * s,
      keepaliveInterval: 5 * s, keepaliveProbes: 4, probesOut: 3)
    lookups.settings[remote(40002)] = SocketSettings(endpoints: remote(40002), state: .finWait2, linger2: .nanoseconds(90 * s))
    lookups.settings[client] = SocketSettings(endpoints: client, state: .finWait2, inode: 11, shutdown: [.send, .receive])
    lookups.settings[remote(40003)] = SocketSettings(endpoints: remote(40003), state: .finWait2, linger2: .off)
    lookups.pods[100] = OwnerLabels(namespace: "shop", pod: "web-1", container: "app", comm: "client")
    lookups.traced[remote(40001)] = TracedClose(path: .shutdownWrite, syscall: .shutdown, closer: owner(100, "client"),
                                                finWait2At: 9_000 * s, stack: site)
    lookups.traced[remote(40002)] = TracedClose(path: .exit, syscall: .exitGroup, closer: nil, finWait2At: nil)
    let ipv6 = Endpoints(local: .v6(high: 0xfd00 << 48, low: 1), localPort: 40005,
                         remote: .v6(high: 0xfd00 << 48, low: 2), remotePort: 443)
    let d = diagnose([
      (1, [finWait2(client, inode: 11),
           finWait2(remote(40001), inode: 11, timer: 2, expires: 2_000, probes: 3),
           DiagSocket(state: .finWait2, endpoints: remote(40002), timer: 2, expiresMilliseconds: 25_000),
           finWait2(remote(40003), inode: 33),
           finWait2(remote(40004), inode: 33, ackAgo: 5, dataAgo: 5),
           DiagSocket(state: .finWait2, endpoints: ipv6, timer: 3, expiresMilliseconds: 9_000),
           DiagSocket(state: .closeWait, endpoints: remote(8080), inode: 22)]),
      (2, [DiagSocket(state: .closeWait, endpoints: backend, inode: 22, lastAckReceivedMilliseconds: 7)]),
    ])
    XCTAssertEqual(Set(d.groups.map(\.verdict)), Set(Doctor.Verdict.allCases))
    let line = DoctorFormat(clock: WallClock(offset: 1_764_000_000 * Int64(s))).json(d)
    XCTAssertTrue(line.contains(#""path":"shutdown_rdwr""#), line)
    XCTAssertTrue(line.contains(#""dwell_lower_bound":false"#), line)
    XCTAssertTrue(line.contains(#""trace":{"path":"exit","syscall":"exit_group","closer":null,"stack":null}"#), line)
    let check = try schemaCheck([line], schema: "doctor.schema.json")
    XCTAssertEqual(check.status, 0, check.report)
    // The schema is closed: a key it does not know fails.
    let drifted = line.replacingOccurrences(of: #""keepalive_armed":"#, with: #""keepalive_on":"#)
    XCTAssertNotEqual(try schemaCheck([drifted], schema: "doctor.schema.json").status, 0)
  }

  func testMissingCapabilitiesEachTurnOneReadOffWithOneReason() {
    let root: UInt64 = (1 << 41) - 1
    XCTAssertEqual(Capability.doctorMissing(effective: root), [])
    XCTAssertEqual(Capability.doctorMissing(effective: 0), [.sysAdmin, .sysPtrace, .netAdmin, .bpf])
    XCTAssertEqual(Capability.doctorMissing(effective: Capability.bpf.bit | Capability.perfmon.bit),
                   [.sysAdmin, .sysPtrace, .netAdmin])
    XCTAssertEqual(Capability.doctorMissing(effective: Capability.sysAdmin.bit), [.sysPtrace, .netAdmin],
                   "CAP_SYS_ADMIN loads tracing programs too")
    XCTAssertEqual(Capability.doctorMissing(effective: Capability.bpf.bit), [.sysAdmin, .sysPtrace, .netAdmin, .perfmon])
    for c in Capability.doctorMissing(effective: 0) + [.perfmon] { XCTAssertNotNil(c.doctorWithoutIt, c.name) }
  }

  func testAKnownProgramAddsItsOwnSettingForTheSideItHolds() throws {
    lookups.programs = [200: .haproxy, 100: .nginx, 300: .envoy]
    let ours = finWait2(loopback(40000, 8080), inode: 11)
    let peer = DiagSocket(state: .closeWait, endpoints: loopback(8080, 40000), inode: 22)
    let half = finWait2(remote(40001), inode: 33, ackAgo: 5, dataAgo: 5)
    let d = diagnose([(1, [ours, peer, half])])
    XCTAssertEqual(d.groups.map(\.verdict), [.peerCloseWait, .halfClose])
    XCTAssertEqual(d.groups[0].program, .haproxy, "the culprit is the peer in CLOSE_WAIT, not the client")
    XCTAssertNil(d.groups[1].program, "nothing to change in a healthy half-close")
    let lines = DoctorFormat(clock: WallClock(offset: 0)).text(d)
    XCTAssertTrue(lines.contains("   culprit: server (pid 200)"), "\(lines)")
    XCTAssertTrue(lines.contains("   owner: proxy (pid 300)"), "a healthy group has no culprit: \(lines)")
    let text = DoctorFormat(clock: WallClock(offset: 0)).text(d).joined(separator: "\n")
    let advice = try XCTUnwrap(KnownProgram.haproxy.advice(for: .holdsCloseWait))
    XCTAssertTrue(text.contains("   haproxy: \(advice.text) (docs/programs.md#haproxy)"), text)
    XCTAssertTrue(DoctorFormat(clock: WallClock(offset: 0)).json(d).contains(#""program":{"name":"haproxy","advice":"#))
  }

  func testBigJSONComesInPiecesThatMakeOneObject() throws {
    let many = (0..<2_000).map { finWait2(remote(UInt16(20_000 + $0)), inode: 11) }
    let d = diagnose([(1, many)])
    var pieces: [String] = []
    DoctorFormat(clock: WallClock(offset: 0)).json(d) { pieces.append($0.text) }
    XCTAssertGreaterThan(pieces.count, 5, "about 64 KiB each")
    XCTAssertTrue(pieces.dropLast().allSatisfy { $0.utf8.count >= DoctorFormat.chunk && $0.utf8.count < DoctorFormat.chunk + 2_048 })
    let whole = pieces.joined()
    let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(whole.utf8)) as? [String: Any])
    let groups = try XCTUnwrap(object["groups"] as? [[String: Any]])
    XCTAssertEqual((groups[0]["connections"] as? [Any])?.count, 2_000)
  }
}

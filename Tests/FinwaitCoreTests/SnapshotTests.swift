import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class SnapshotTests: XCTestCase {
  let s: UInt64 = 1_000_000_000

  func endpoints(_ local: UInt16, _ remote: UInt16) -> Endpoints {
    Endpoints(local: .v4(127, 0, 0, 1), localPort: local, remote: .v4(127, 0, 0, 1), remotePort: remote)
  }

  func testListsAttachedAndTimewaitWithOwnersBoundsAndPeers() {
    let attached = DiagSocket(state: .finWait2, endpoints: endpoints(40000, 8080), inode: 11, lastAckReceivedMilliseconds: 90_000)
    let peer = DiagSocket(state: .closeWait, endpoints: endpoints(8080, 40000), inode: 22, lastAckReceivedMilliseconds: 89_000)
    let orphan = DiagSocket(state: .finWait2, endpoints: endpoints(40001, 8080), timer: 3, expiresMilliseconds: 20_000)
    let elsewhere = DiagSocket(state: .finWait2, endpoints: endpoints(40000, 8080), inode: 33, lastAckReceivedMilliseconds: 1_000)
    let owners: [UInt32: Owner] = [11: Owner(pid: 100, tid: 100, comm: "client", cgroupID: 0),
                                   22: Owner(pid: 200, tid: 200, comm: "server", cgroupID: 0)]
    let records = Snapshot.records(
      [Snapshot.Dump(netns: 1, sockets: [attached, peer, orphan], finTimeout: 60 * s),
       Snapshot.Dump(netns: 2, sockets: [elsewhere], finTimeout: 60 * s)],
      owner: { owners[$0] }, now: 1_000 * s)
    XCTAssertEqual(records.count, 3, "the same 4-tuple in two namespaces is two connections")
    XCTAssertEqual(records.map(\.kind), [.existing, .existing, .existing])

    let a = records[0]  // oldest first
    XCTAssertEqual(a.connection.owner?.comm, "client")
    XCTAssertEqual(a.connection.netns, 1)
    XCTAssertFalse(a.orphaned)
    XCTAssertEqual(a.dwell, .atLeast(90 * s))
    XCTAssertEqual(a.peer?.owner?.comm, "server")
    XCTAssertEqual(a.peer?.closeWait(now: 1_000 * s), 89 * s)

    let o = records[1]
    XCTAssertTrue(o.orphaned)
    XCTAssertNil(o.connection.owner)
    XCTAssertEqual(o.dwell, .atLeast(40 * s), "fin timeout 60 s minus 20 s left")
    XCTAssertEqual(o.deadline, 1_020 * s)

    XCTAssertEqual(records[2].connection.netns, 2)
    XCTAssertNil(records[2].peer, "a peer is matched within its own tuple, not across namespaces' owners")
  }

  /// Pods: the same endpoints in two namespaces. A peer is looked for in the
  /// connection's own namespace first, then (not for loopback) anywhere;
  /// thousands of sockets span the dump's chunks in order.
  func testPeersAcrossNamespacesAndLargeDumps() {
    let pod = IPAddress.v4(10, 0, 0, 2), service = IPAddress.v4(10, 0, 0, 3)
    func e(_ a: IPAddress, _ ap: UInt16, _ b: IPAddress, _ bp: UInt16) -> Endpoints {
      Endpoints(local: a, localPort: ap, remote: b, remotePort: bp)
    }
    var client: [DiagSocket] = []
    for i in 0..<5_000 {
      client.append(DiagSocket(state: .finWait2, endpoints: e(pod, UInt16(30_000 + i), service, 80),
                               inode: UInt32(1_000 + i), lastAckReceivedMilliseconds: UInt32(i)))
    }
    let serverA = DiagSocket(state: .closeWait, endpoints: e(service, 80, pod, 30_000), inode: 1)
    let serverB = DiagSocket(state: .closeWait, endpoints: e(service, 80, pod, 30_001), inode: 2)
    let sameAsB = DiagSocket(state: .closeWait, endpoints: e(service, 80, pod, 30_001), inode: 3)
    let records = Snapshot.records(
      [Snapshot.Dump(netns: 10, sockets: [serverA, serverB], finTimeout: nil),
       Snapshot.Dump(netns: 20, sockets: client + [sameAsB], finTimeout: nil)],
      owner: { Owner(pid: $0, tid: $0, comm: "p", cgroupID: 0) }, now: 10_000 * s)
    XCTAssertEqual(records.count, 5_000)
    XCTAssertEqual(records.first?.connection.owner?.pid, 5_999, "oldest first")
    XCTAssertEqual(records.last?.connection.owner?.pid, 1_000)
    XCTAssertEqual(records.map(\.connection.owner!.pid), (1_000..<6_000).reversed().map(UInt32.init))
    func peer(_ port: UInt16) -> Peer? { records.first { $0.connection.endpoints.localPort == port }?.peer }
    XCTAssertEqual(peer(30_000)?.netns, 10, "the only peer, in another namespace")
    XCTAssertEqual(peer(30_000)?.owner?.pid, 1)
    XCTAssertEqual(peer(30_001)?.netns, 20, "the peer in the connection's own namespace first")
    XCTAssertEqual(peer(30_001)?.owner?.pid, 3)
    XCTAssertNil(peer(30_002))
  }

  func testFilter() {
    let r = Snapshot.records(
      [Snapshot.Dump(netns: 1, sockets: [DiagSocket(state: .finWait2, endpoints: endpoints(40000, 8080), inode: 1)], finTimeout: nil)],
      owner: { _ in Owner(pid: 5, tid: 5, comm: "x", cgroupID: 0) }, now: 0)[0]
    XCTAssertTrue(config(pid: 5, port: 8080, family: 4, netns: 1).matches(r))
    XCTAssertFalse(config(pid: 6).matches(r))
    XCTAssertFalse(config(comm: "y").matches(r))
    XCTAssertFalse(config(port: 9).matches(r))
    XCTAssertFalse(config(family: 6).matches(r))
    XCTAssertFalse(config(netns: 2).matches(r))
  }

  func config(pid: UInt32? = nil, comm: String? = nil, port: UInt16? = nil, family: Int? = nil, netns: UInt32? = nil)
    -> KernelConfig
  {
    var c = KernelConfig()
    c.pid = pid
    c.comm = comm
    c.port = port
    c.family = family
    c.netns = netns
    return c
  }

  /// What the flags set is what the kernel gets: one value, 0 for "no filter".
  func testFiltersAreTheKernelsConfiguration() {
    let c = config(pid: 42, comm: "nginx", port: 443, family: 6, netns: 7)
    XCTAssertEqual(c.raw.tgid, 42)
    XCTAssertEqual(c.raw.filter_comm, 1)
    XCTAssertEqual(withUnsafeBytes(of: c.raw.comm) { Array($0.prefix(6)) }, Array("nginx".utf8) + [0])
    XCTAssertEqual(c.raw.port, 443)
    XCTAssertEqual(c.raw.family, 10)
    XCTAssertEqual(c.raw.netns, 7)
    var none = c
    none.pid = nil
    none.comm = nil
    none.port = nil
    none.family = nil
    none.netns = nil
    XCTAssertEqual([none.raw.tgid, UInt32(none.raw.filter_comm), UInt32(none.raw.port), UInt32(none.raw.family), none.raw.netns],
                   [0, 0, 0, 0, 0])
    XCTAssertNil(none.comm)
    XCTAssertEqual(KernelConfig().maxTracked, UInt32(FW_DEFAULT_MAX_TRACKED))
    XCTAssertTrue(KernelConfig().followPeers)
  }
}

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

  func testFilter() {
    let r = Snapshot.records(
      [Snapshot.Dump(netns: 1, sockets: [DiagSocket(state: .finWait2, endpoints: endpoints(40000, 8080), inode: 1)], finTimeout: nil)],
      owner: { _ in Owner(pid: 5, tid: 5, comm: "x", cgroupID: 0) }, now: 0)[0]
    XCTAssertTrue(RecordFilter(pid: 5, port: 8080, family: 4, netns: 1).matches(r))
    XCTAssertFalse(RecordFilter(pid: 6).matches(r))
    XCTAssertFalse(RecordFilter(comm: "y").matches(r))
    XCTAssertFalse(RecordFilter(port: 9).matches(r))
    XCTAssertFalse(RecordFilter(family: 6).matches(r))
    XCTAssertFalse(RecordFilter(netns: 2).matches(r))
  }
}

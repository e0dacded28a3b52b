import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class OpenConnectionsTests: XCTestCase {
  private func enter(socket: UInt64 = 0x1000, at ts: UInt64, ipv6: Bool = false,
                     owner: (pid: UInt32, comm: String)? = (4242, "nginx")) throws -> Event {
    try Event(decoding: Fixture.raw(kind: FW_KIND_ENTER, socket: socket, ts: ts, fw1: ts - 1, fw2: ts,
                                    owner: owner, ipv6: ipv6))
  }

  func testPackingGivesBackTheSameEvent() throws {
    var withStack = try enter(at: 80)
    withStack.connection.stackID = 17
    for event in [try enter(at: 50), try enter(at: 60, ipv6: true), try enter(at: 70, owner: nil), withStack] {
      let raw = try XCTUnwrap(fw_event(packing: event))
      XCTAssertEqual(try Event(decoding: raw), event)
    }
  }

  func testPackingKeepsThePeerSeenByTheKernel() throws {
    var event = try enter(at: 50)
    event.peer = Peer(netns: 4026531840, closeWaitSince: 51)
    XCTAssertEqual(try Event(decoding: XCTUnwrap(fw_event(packing: event))), event)
  }

  func testWhatARecordCannotHoldIsNotPacked() throws {
    var event = try enter(at: 50)
    event.connection.owner?.comm = String(repeating: "\u{FFFD}", count: 6)  // 18 bytes of UTF-8
    XCTAssertNil(fw_event(packing: event))
    event = try enter(at: 50)
    event.peer = Peer(netns: 1, closeWaitSince: 51, closedAt: 52)  // only a peer_close record carries closedAt
    XCTAssertNil(fw_event(packing: event))
  }

  func testKeepsWhatCannotBePackedAsIs() throws {
    var open = OpenConnections()
    var event = try enter(at: 50)
    event.connection.owner?.comm = String(repeating: "\u{FFFD}", count: 6)
    open.insert(event)
    XCTAssertEqual(open.enteredAt(0x1000), 50)
    XCTAssertEqual(open.remove(0x1000)?.event, event)
    XCTAssertEqual(open.count, 0)
  }

  func testPeerFactsLearntLaterComeBackWithTheConnection() throws {
    var open = OpenConnections()
    let event = try enter(at: 50)
    open.insert(event)
    let closed = Peer(netns: 7, closedAt: 60, owner: Owner(pid: 1, tid: 1, comm: "app", cgroupID: 2))
    XCTAssertFalse(open.merge(closed, into: 0x2000, endpoints: event.connection.endpoints))
    XCTAssertTrue(open.merge(closed, into: 0x1000, endpoints: event.connection.endpoints))
    XCTAssertEqual(open.event(0x1000)?.peer, closed)
    XCTAssertEqual(open.remove(0x1000)?.peer, closed)
    open.insert(try enter(at: 70))
    XCTAssertNil(open.event(0x1000)?.peer, "a later connection on the socket does not inherit it")
  }

  func testStuckIsMarkedOncePerEntry() throws {
    var open = OpenConnections()
    open.insert(try enter(at: 50))
    XCTAssertNil(open.markStuck(0x1000, enteredAt: 49))
    XCTAssertNotNil(open.markStuck(0x1000, enteredAt: 50))
    XCTAssertNil(open.markStuck(0x1000, enteredAt: 50))
    XCTAssertEqual(open.remove(0x1000)?.stuckReported, true)
  }

  func testSlotsAreReusedAcrossChunks() throws {
    var open = OpenConnections()
    for round in 0..<3 {
      for i in 0..<3000 {
        open.insert(try enter(socket: UInt64(0x10000 + i), at: UInt64(100 + round * 10000 + i)))
      }
      XCTAssertEqual(open.count, 3000)
      let order = open.byEntry.map(\.connection.socket)
      XCTAssertEqual(order, (0..<3000).map { UInt64(0x10000 + $0) })
      for i in stride(from: 0, to: 3000, by: 1) {
        XCTAssertEqual(open.remove(UInt64(0x10000 + i))?.event?.enteredAt, UInt64(100 + round * 10000 + i))
      }
      XCTAssertEqual(open.count, 0)
    }
  }
}

final class SlabTests: XCTestCase {
  func testFreedSlotsAreReusedBeforeTheSlabGrows() {
    var slab = Slab<Int>()
    let slots = (0..<2500).map { slab.insert($0) }
    XCTAssertEqual(Set(slots).count, 2500)
    XCTAssertEqual(slots.map { slab[$0] }, Array(0..<2500))
    slab.remove(slots[7])
    slab.remove(slots[2001])
    let reused = [slab.insert(-1), slab.insert(-2)]
    XCTAssertEqual(Set(reused), [slots[7], slots[2001]])
    XCTAssertEqual(slab.insert(2500), 2500)
  }
}

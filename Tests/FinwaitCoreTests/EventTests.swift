import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class EventTests: XCTestCase {
  func testRecordLayoutIsTheSharedHeaders() {
    XCTAssertEqual(MemoryLayout<fw_event>.size, 128)
    XCTAssertEqual(MemoryLayout<fw_event>.offset(of: \fw_event.comm), 112)
  }

  func testDecodesAnAttachedEnterWithOwner() throws {
    let e = try Event(decoding: Fixture.raw(kind: FW_KIND_ENTER, ts: 500, fw1: 400, fw2: 500))
    XCTAssertEqual(e.kind, .enter)
    XCTAssertEqual(e.connection.owner, Owner(pid: 4242, tid: 4243, comm: "nginx", cgroupID: 77))
    XCTAssertEqual(e.finWait1At, 400)
    XCTAssertEqual(e.finWait2At, 500)
    XCTAssertEqual(e.connection.path, .shutdownWrite)
    XCTAssertEqual(e.connection.syscall, .shutdown)
    XCTAssertEqual(e.connection.syscallNumber, 48)
    XCTAssertNil(e.connection.stackID, "-1: no stack captured")
    let withStack = try Event(decoding: Fixture.raw(kind: FW_KIND_ENTER, ts: 500, fw1: 400, fw2: 500, stack: 4095))
    XCTAssertEqual(withStack.connection.stackID, 4095)
    XCTAssertEqual(e.connection.endpoints.local.description, "10.0.0.1")
    XCTAssertEqual(e.connection.endpoints.remote.description, "10.0.0.2")
    XCTAssertEqual(e.connection.endpoints.localPort, 41234)
    XCTAssertEqual(e.connection.endpoints.remotePort, 8080)
    XCTAssertFalse(e.connection.orphanedAtEntry)
  }

  func testDecodesALeaveWithItsEndAndIPv6() throws {
    let e = try Event(decoding: Fixture.raw(
      kind: FW_KIND_LEAVE, ts: 900, fw2: 500, end: FW_END_RESET, orphanAtEnd: true, ipv6: true))
    XCTAssertEqual(e.kind, .leave(.reset))
    XCTAssertEqual(e.connection.endpoints.local, .v6(high: 0, low: 1))
    XCTAssertEqual(e.connection.endpoints.local.description, "::1")
    XCTAssertEqual(e.connection.endpoints.remote.description, "2001:db8::2")
    XCTAssertEqual(e.connection.endpoints.local.family, .ipv6)
    XCTAssertTrue(e.orphanedAtEnd)
  }

  func testUnknownOwnerAndUnseenFinWait2AreNil() throws {
    let e = try Event(decoding: Fixture.raw(
      kind: FW_KIND_LEAVE, ts: 900, path: FW_PATH_UNKNOWN, syscall: FW_SYSCALL_UNKNOWN,
      end: FW_END_PEER_FIN, owner: nil))
    XCTAssertNil(e.connection.owner)
    XCTAssertNil(e.finWait2At)
    XCTAssertNil(e.finWait1At)
    XCTAssertEqual(e.connection.path, .unknown)
  }

  func testRejectsGarbage() {
    var raw = Fixture.raw(kind: FW_KIND_ENTER, ts: 1)
    raw.kind = 99
    XCTAssertThrowsError(try Event(decoding: raw)) { XCTAssertEqual($0 as? DecodeError, .unknownKind(99)) }
    raw = Fixture.raw(kind: FW_KIND_LEAVE, ts: 1)
    raw.end = 42
    XCTAssertThrowsError(try Event(decoding: raw)) { XCTAssertEqual($0 as? DecodeError, .unknownEnd(42)) }
    raw = Fixture.raw(kind: FW_KIND_ENTER, ts: 1)
    raw.family = 1
    XCTAssertThrowsError(try Event(decoding: raw)) { XCTAssertEqual($0 as? DecodeError, .unknownFamily(1)) }
  }

  func testCommOfFullLengthIsNotOverrun() throws {
    let e = try Event(decoding: Fixture.raw(kind: FW_KIND_ENTER, ts: 1, owner: (1, "exactly15chars!")))
    XCTAssertEqual(e.connection.owner?.comm, "exactly15chars!")
  }
}

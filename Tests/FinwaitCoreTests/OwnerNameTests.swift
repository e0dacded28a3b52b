import CFinwaitEvent
import XCTest

@testable import FinwaitCore

/// Owner keeps its task name inline; these pin that it reads back exactly
/// what a String would have held.
final class OwnerNameTests: XCTestCase {
  private func decodedComm(_ bytes: [UInt8]) throws -> String? {
    var raw = Fixture.raw(kind: FW_KIND_ENTER, ts: 2, fw2: 1)
    withUnsafeMutableBytes(of: &raw.comm) { comm in
      for i in comm.indices { comm[i] = 0 }
      comm.copyBytes(from: bytes)
    }
    return try Event(decoding: raw).connection.owner?.comm
  }

  func testKernelNamesReadBackAsTheirUTF8Decoding() throws {
    let names: [[UInt8]] = [
      [], Array("nginx".utf8), Array("exactly15chars!".utf8), Array("sixteen-bytes-xx".utf8),
      Array("café".utf8), Array("日本語プロセス".utf8.prefix(16)), [0xff, 0xfe, 0x41], [UInt8](repeating: 0xff, count: 16),
    ]
    for bytes in names {
      let expected = String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
      XCTAssertEqual(try decodedComm(bytes), expected, "\(bytes)")
    }
  }

  func testDecodedAndConstructedOwnersAreEqualAndHashAlike() throws {
    var raw = Fixture.raw(kind: FW_KIND_ENTER, ts: 2, fw2: 1, owner: (4242, "nginx"))
    let decoded = try XCTUnwrap(try Event(decoding: raw).connection.owner)
    let built = Owner(pid: 4242, tid: 4243, comm: "nginx", cgroupID: 77)
    XCTAssertEqual(decoded, built)
    XCTAssertEqual(Set([decoded, built]).count, 1)
    withUnsafeMutableBytes(of: &raw.comm) { $0[0] = 0xff }
    let invalid = try XCTUnwrap(try Event(decoding: raw).connection.owner)
    XCTAssertEqual(invalid, Owner(pid: 4242, tid: 4243, comm: "\u{FFFD}ginx", cgroupID: 77))
    XCTAssertNotEqual(invalid, built)
  }

  func testConstructedNamesRoundTripAndSet() {
    var owner = Owner(pid: 1, tid: 1, comm: "", cgroupID: 0)
    XCTAssertEqual(owner.comm, "")
    for name in ["?", "kube-proxy", "a\u{0}b", String(repeating: "\u{FFFD}", count: 16)] {
      owner.comm = name
      XCTAssertEqual(owner.comm, name)
    }
  }

  func testNamesLongerThanAnyTaskNameAreCutAtACharacterBoundary() {
    let owner = Owner(pid: 1, tid: 1, comm: String(repeating: "é", count: 30), cgroupID: 0)
    XCTAssertEqual(owner.comm, String(repeating: "é", count: 24))
  }
}

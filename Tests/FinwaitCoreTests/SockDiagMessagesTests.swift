import XCTest
@testable import FinwaitCore

/// Replies built byte by byte the way the kernel lays them out.
enum DiagBytes {
  static func le32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
  static func le16(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

  static func message(type: UInt16, body: [UInt8]) -> [UInt8] {
    var m = le32(UInt32(16 + body.count)) + le16(type) + le16(2) + le32(1) + le32(0) + body
    while m.count % 4 != 0 { m.append(0) }
    return m
  }

  /// inet_diag_msg for 10.0.0.1:sport > 10.0.0.2:dport, optionally with tcp_info.
  static func socket(state: UInt8, sport: UInt16, dport: UInt16, timer: UInt8 = 0, expires: UInt32 = 0,
                     inode: UInt32 = 0, lastAckRecv: UInt32? = nil) -> [UInt8] {
    var b: [UInt8] = [2, state, timer, 0]
    b += [UInt8(sport >> 8), UInt8(sport & 0xff), UInt8(dport >> 8), UInt8(dport & 0xff)]
    b += [10, 0, 0, 1] + [UInt8](repeating: 0, count: 12)
    b += [10, 0, 0, 2] + [UInt8](repeating: 0, count: 12)
    b += le32(0) + le32(0) + le32(0)           // if, cookie
    b += le32(expires) + le32(0) + le32(0) + le32(1000) + le32(inode)
    if let lastAckRecv {
      var info = [UInt8](repeating: 0, count: 104)
      info.replaceSubrange(56..<60, with: le32(lastAckRecv))
      b += le16(UInt16(4 + info.count)) + le16(2) + info
    }
    return message(type: 20, body: b)
  }

  static let done = message(type: 3, body: le32(0))
}

final class SockDiagMessagesTests: XCTestCase {
  func parse(_ bytes: [UInt8]) throws -> SockDiagMessages.Batch {
    try bytes.withUnsafeBytes { try SockDiagMessages.parse($0) }
  }

  func testRequestLayout() {
    let r = SockDiagMessages.dumpRequest(family: 10, states: 1 << 5, sequence: 7)
    XCTAssertEqual(r.count, 72)
    XCTAssertEqual(Array(r[0..<4]), DiagBytes.le32(72))
    XCTAssertEqual(Array(r[4..<6]), DiagBytes.le16(20))
    XCTAssertEqual(Array(r[6..<8]), DiagBytes.le16(0x301))
    XCTAssertEqual(Array(r[16..<20]), [10, 6, 2, 0])
    XCTAssertEqual(Array(r[20..<24]), DiagBytes.le32(32))
  }

  func testLookupRequestNamesOneSocketInAnyState() {
    let endpoints = Endpoints(local: .v4(10, 0, 0, 1), localPort: 41234, remote: .v6(high: 0x2001_0db8 << 32, low: 2),
                              remotePort: 8080)
    let r = SockDiagMessages.lookupRequest(endpoints, sequence: 9)
    XCTAssertEqual(r.count, 72)
    XCTAssertEqual(Array(r[0..<4]), DiagBytes.le32(72))
    XCTAssertEqual(Array(r[6..<8]), DiagBytes.le16(0x1), "a request, not a dump")
    XCTAssertEqual(Array(r[8..<12]), DiagBytes.le32(9))
    XCTAssertEqual(Array(r[16..<20]), [2, 6, 2, 0])
    XCTAssertEqual(Array(r[20..<24]), DiagBytes.le32(~0))
    XCTAssertEqual(Array(r[24..<28]), [0xa1, 0x12, 0x1f, 0x90], "ports in network order")
    XCTAssertEqual(Array(r[28..<32]), [10, 0, 0, 1])
    XCTAssertEqual(Array(r[44..<48]), [0x20, 0x01, 0x0d, 0xb8])
    XCTAssertEqual(r[59], 2)
    XCTAssertEqual(Array(r[60..<64]), DiagBytes.le32(0))
    XCTAssertEqual(Array(r[64..<72]), [UInt8](repeating: 0xff, count: 8), "INET_DIAG_NOCOOKIE")
  }

  func testParsesSocketsTimersAndTcpInfo() throws {
    let bytes = DiagBytes.socket(state: 5, sport: 41234, dport: 8080, inode: 555, lastAckRecv: 1500)
      + DiagBytes.socket(state: 6, sport: 41235, dport: 8080, timer: 3, expires: 59_000)
      + DiagBytes.done
    let batch = try parse(bytes)
    XCTAssertTrue(batch.done)
    XCTAssertEqual(batch.sockets.count, 2)
    let full = batch.sockets[0]
    XCTAssertEqual(full.state, .finWait2)
    XCTAssertEqual(full.endpoints.local.description, "10.0.0.1")
    XCTAssertEqual(full.endpoints.localPort, 41234)
    XCTAssertEqual(full.endpoints.remotePort, 8080)
    XCTAssertEqual(full.inode, 555)
    XCTAssertEqual(full.uid, 1000)
    XCTAssertEqual(full.lastAckReceivedMilliseconds, 1500)
    XCTAssertFalse(full.isTimewait)
    let tw = batch.sockets[1]
    XCTAssertEqual(tw.state, .timeWait)
    XCTAssertEqual(tw.expiresMilliseconds, 59_000)
    XCTAssertTrue(tw.isTimewait)
    XCTAssertNil(tw.lastAckReceivedMilliseconds)
  }

  func testKernelErrorAndTruncation() throws {
    let error = DiagBytes.message(type: 2, body: DiagBytes.le32(UInt32(bitPattern: -1)) + [UInt8](repeating: 0, count: 16))
    XCTAssertThrowsError(try parse(error)) { XCTAssertEqual($0 as? SockDiagMessages.ParseError, .kernel(errno: 1)) }
    let one = DiagBytes.socket(state: 5, sport: 1, dport: 2, lastAckRecv: 1)
    for cut in [1, 15, 17, 40, 87, one.count - 1] {
      XCTAssertThrowsError(try parse(Array(one.prefix(cut))), "cut at \(cut)")
    }
    // A message claiming less than a header is rejected, not looped on.
    XCTAssertThrowsError(try parse(DiagBytes.le32(8) + [UInt8](repeating: 0, count: 12)))
  }

  func testGarbageNeverCrashes() {
    var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt8 {
      seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: seed >> 33)
    }
    let valid = DiagBytes.socket(state: 5, sport: 1, dport: 2, lastAckRecv: 9) + DiagBytes.done
    for round in 0..<2_000 {
      var bytes = valid
      for _ in 0..<(1 + round % 8) { bytes[Int(next()) % bytes.count] = next() }
      if round % 3 == 0 { bytes = Array(bytes.prefix(Int(next()) % bytes.count)) }
      _ = try? parse(bytes)  // must return or throw, never trap
    }
  }

  func testUnknownStatesAndFamiliesAreSkipped() throws {
    var bogus = DiagBytes.socket(state: 5, sport: 1, dport: 2)
    bogus[16] = 99  // family
    let batch = try parse(bogus + DiagBytes.socket(state: 77, sport: 1, dport: 2) + DiagBytes.done)
    XCTAssertEqual(batch.sockets, [])
    XCTAssertTrue(batch.done)
  }
}

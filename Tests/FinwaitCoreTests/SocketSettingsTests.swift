import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class SocketSettingsTests: XCTestCase {
  func testRecordLayoutIsTheSharedHeaders() {
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.size, 96)
    XCTAssertEqual(SocketSettings.recordSize, 96)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.linger2), 32)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.shutdown), 90)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.netns_keepalive_time), 92)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.saddr), 48)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.state), 86)
    XCTAssertEqual(MemoryLayout<fw_sock_settings>.offset(of: \fw_sock_settings.probes_out), 89)
  }

  /// A record as the iterator writes it at HZ 250, every field distinct.
  private func raw(family: UInt16 = 2, state: UInt8 = 5, linger2: Int64 = 23 * 250) -> fw_sock_settings {
    var r = fw_sock_settings()
    r.cookie = 0x1122_3344_5566
    r.inode = 0x1_0000_0007  // above 32 bits: kept whole
    r.keepalive_time = 37 * 250
    r.keepalive_intvl = 11 * 250
    r.linger2 = linger2
    r.shutdown = 2
    r.netns_keepalive_time = 7200 * 250
    r.user_timeout_ms = 1234
    r.netns = 4_026_531_840
    withUnsafeMutableBytes(of: &r.saddr) { $0.copyBytes(from: family == 2 ? [10, 0, 0, 1] : [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1]) }
    withUnsafeMutableBytes(of: &r.daddr) { $0.copyBytes(from: family == 2 ? [10, 0, 0, 2] : Array(repeating: 0, count: 15) + [1]) }
    r.sport = 41234
    r.dport = 8080
    r.family = family
    r.state = state
    r.keepalive = 1
    r.keepalive_probes = 4
    r.probes_out = 2
    return r
  }

  private func bytes(_ r: fw_sock_settings) -> [UInt8] {
    withUnsafeBytes(of: r) { Array($0) }
  }

  func testDecodesEveryField() throws {
    let s = try bytes(raw()).withUnsafeBytes { try SocketSettings(record: $0, hz: 250) }
    XCTAssertEqual(s.endpoints, Endpoints(local: .v4(10, 0, 0, 1), localPort: 41234, remote: .v4(10, 0, 0, 2), remotePort: 8080))
    XCTAssertEqual(s.state, .finWait2)
    XCTAssertEqual(s.inode, 0x1_0000_0007)
    XCTAssertEqual(s.cookie, 0x1122_3344_5566)
    XCTAssertEqual(s.netns, 4_026_531_840)
    XCTAssertTrue(s.keepalive)
    XCTAssertEqual(s.keepaliveIdle, 37_000_000_000)
    XCTAssertEqual(s.keepaliveInterval, 11_000_000_000)
    XCTAssertEqual(s.keepaliveProbes, 4)
    XCTAssertEqual(s.linger2, .nanoseconds(23_000_000_000))
    XCTAssertEqual(s.userTimeoutMilliseconds, 1234)
    XCTAssertEqual(s.probesOut, 2)
    XCTAssertEqual(s.shutdown, .send, "SHUT_WR")
  }

  func testTimesAreExactAtEveryHZ() throws {
    var r = raw()
    r.keepalive_time = 1
    r.keepalive_intvl = 300
    r.linger2 = 7
    let s = try SocketSettings(decoding: r, hz: 300)
    XCTAssertEqual(s.keepaliveIdle, 3_333_333, "one jiffy at 300 Hz")
    XCTAssertEqual(s.keepaliveInterval, 1_000_000_000)
    XCTAssertEqual(s.linger2, .nanoseconds(23_333_333))
    XCTAssertThrowsError(try SocketSettings(decoding: r, hz: 0)) {
      XCTAssertEqual($0 as? SocketSettings.DecodeError, .unknownHZ)
    }
    r.shutdown = 3 | 0xfc
    XCTAssertEqual(try SocketSettings(decoding: r, hz: 300).shutdown, [.receive, .send], "SHUT_RDWR; other bits ignored")
  }

  func testHZIsTheNamespacesKeepaliveTimeInJiffiesOverItsSeconds() {
    for hz: UInt64 in [100, 250, 300, 1000] {
      XCTAssertEqual(SocketSettings.hz(keepaliveTimeJiffies: UInt32(7200 * hz), keepaliveTimeSeconds: 7200), hz)
      XCTAssertEqual(SocketSettings.hz(keepaliveTimeJiffies: UInt32(45 * hz), keepaliveTimeSeconds: 45), hz)
    }
    XCTAssertNil(SocketSettings.hz(keepaliveTimeJiffies: 7200 * 250, keepaliveTimeSeconds: 0), "unreadable sysctl")
    XCTAssertNil(SocketSettings.hz(keepaliveTimeJiffies: 7200 * 250 + 1, keepaliveTimeSeconds: 7200), "not a whole HZ")
    XCTAssertNil(SocketSettings.hz(keepaliveTimeJiffies: 7200 * 64, keepaliveTimeSeconds: 7200), "no kernel has HZ 64")
    XCTAssertNil(SocketSettings.hz(keepaliveTimeJiffies: 0, keepaliveTimeSeconds: 7200))
  }

  func testZeroMeansTheNamespaceDefaultAndNegativeLinger2MeansOff() throws {
    var r = raw(state: 8, linger2: 0)
    r.cookie = 0
    r.keepalive = 0
    r.keepalive_time = 0
    r.keepalive_intvl = 0
    r.keepalive_probes = 0
    let s = try SocketSettings(decoding: r, hz: 250)
    XCTAssertEqual(s.state, .closeWait)
    XCTAssertNil(s.cookie, "0: the kernel could not give it")
    XCTAssertFalse(s.keepalive)
    XCTAssertNil(s.keepaliveIdle)
    XCTAssertNil(s.keepaliveInterval)
    XCTAssertNil(s.keepaliveProbes)
    XCTAssertEqual(s.linger2, .default)
    XCTAssertEqual(try SocketSettings(decoding: raw(linger2: -1), hz: 250).linger2, .off)
    XCTAssertEqual(try SocketSettings(decoding: raw(linger2: .min), hz: 250).linger2, .off)
  }

  func testIPv6() throws {
    let s = try SocketSettings(decoding: raw(family: 10), hz: 250)
    XCTAssertEqual(s.endpoints.local.description, "2001:db8::1")
    XCTAssertEqual(s.endpoints.remote, .v6(high: 0, low: 1))
  }

  func testRejectsShortLongAndMalformedRecords() {
    let good = bytes(raw())
    for count in [0, 1, 95, 97] {
      let input = count <= 96 ? Array(good.prefix(count)) : good + [0]
      XCTAssertThrowsError(try input.withUnsafeBytes { try SocketSettings(record: $0, hz: 250) }) {
        XCTAssertEqual($0 as? SocketSettings.DecodeError, .wrongLength(count))
      }
    }
    XCTAssertThrowsError(try SocketSettings(decoding: raw(family: 1), hz: 250)) {
      XCTAssertEqual($0 as? SocketSettings.DecodeError, .unknownFamily(1))
    }
    XCTAssertThrowsError(try SocketSettings(decoding: raw(state: 0), hz: 250)) {
      XCTAssertEqual($0 as? SocketSettings.DecodeError, .unknownState(0))
    }
    XCTAssertThrowsError(try SocketSettings(decoding: raw(state: 13), hz: 250)) {
      XCTAssertEqual($0 as? SocketSettings.DecodeError, .unknownState(13))
    }
  }
}

import XCTest
@testable import FinwaitCore

final class AddressTests: XCTestCase {
  func testIPv6Text() {
    XCTAssertEqual(IPAddress.v6(high: 0, low: 1).description, "::1")
    XCTAssertEqual(IPAddress.v6(high: 0x2001_0db8_0000_0000, low: 0x0000_0000_0000_0001).description, "2001:db8::1")
    XCTAssertEqual(IPAddress.v6(high: 0, low: 0x0000_ffff_7f00_0001).description, "::ffff:127.0.0.1")
    XCTAssertEqual(IPAddress.v6(high: 0x2001_0db8_0001_0000, low: 0x0000_0001_0000_0001).description, "2001:db8:1::1:0:1")
    var line = LineBuffer()
    line.append(.v6(high: 0, low: 1), port: 80)
    XCTAssertEqual(line.text, "[::1]:80")
  }

  func testLoopback() {
    XCTAssertTrue(IPAddress.v4(127, 0, 0, 1).isLoopback)
    XCTAssertTrue(IPAddress.v4(127, 9, 9, 9).isLoopback)
    XCTAssertFalse(IPAddress.v4(10, 0, 0, 1).isLoopback)
    XCTAssertTrue(IPAddress.v6(high: 0, low: 1).isLoopback)
    XCTAssertTrue(IPAddress.v6(high: 0, low: 0x0000_ffff_7f00_0001).isLoopback)
    XCTAssertFalse(IPAddress.v6(high: 0, low: 0x0000_ffff_0a00_0001).isLoopback)
    XCTAssertFalse(IPAddress.v6(high: 0x2001_0db8_0000_0000, low: 1).isLoopback)
  }
}

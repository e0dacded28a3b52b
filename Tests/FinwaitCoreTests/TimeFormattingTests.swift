import XCTest
@testable import FinwaitCore

final class TimeFormattingTests: XCTestCase {
  func testDurations() {
    XCTAssertEqual(formatDuration(nanoseconds: 850), "850ns")
    XCTAssertEqual(formatDuration(nanoseconds: 12_340), "12.3us")
    XCTAssertEqual(formatDuration(nanoseconds: 301_240_000), "301.2ms")
    XCTAssertEqual(formatDuration(nanoseconds: 3_010_000_000), "3.01s")
    XCTAssertEqual(formatDuration(nanoseconds: 302_000_000_000), "5m02s")
    XCTAssertEqual(formatDuration(nanoseconds: 7_380_000_000_000), "2h03m")
  }
}

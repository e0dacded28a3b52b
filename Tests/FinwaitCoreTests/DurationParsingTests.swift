import XCTest
@testable import FinwaitCore

final class DurationParsingTests: XCTestCase {
  func testParsesDurations() {
    XCTAssertEqual(parseDuration("250ms"), 250_000_000)
    XCTAssertEqual(parseDuration("1.5s"), 1_500_000_000)
    XCTAssertEqual(parseDuration("2m"), 120_000_000_000)
    XCTAssertEqual(parseDuration("1h"), 3_600_000_000_000)
    XCTAssertEqual(parseDuration("800us"), 800_000)
    XCTAssertEqual(parseDuration("60"), 60_000_000_000)
    for bad in ["", "ms", "-1s", "1.2.3s", "abc", "1e3", "99999999999h", "1 s"] {
      XCTAssertNil(parseDuration(bad), bad)
    }
  }
}

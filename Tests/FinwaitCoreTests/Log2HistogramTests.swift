import XCTest
@testable import FinwaitCore

final class Log2HistogramTests: XCTestCase {
  func testBucketBoundaries() {
    XCTAssertEqual(Log2Histogram.bucket(of: 0), 0)
    XCTAssertEqual(Log2Histogram.bucket(of: 1), 0)
    XCTAssertEqual(Log2Histogram.bucket(of: 2), 1)
    XCTAssertEqual(Log2Histogram.bucket(of: 3), 1)
    XCTAssertEqual(Log2Histogram.bucket(of: 4), 2)
    XCTAssertEqual(Log2Histogram.bucket(of: 1023), 9)
    XCTAssertEqual(Log2Histogram.bucket(of: 1024), 10)
    XCTAssertEqual(Log2Histogram.bucket(of: .max), 63)
  }

  func testRendersBccStyleRowsFromFirstToLastNonEmptyBucket() {
    var h = Log2Histogram()
    for v: UInt64 in [300, 300, 300, 300, 600, 2000] { h.record(v) }
    let lines = h.render(unit: "usecs", barWidth: 8)
    XCTAssertEqual(lines, [
      "         usecs           : count    distribution",
      "       256 -> 511        : 4        |********|",
      "       512 -> 1023       : 1        |**      |",
      "      1024 -> 2047       : 1        |**      |",
    ])
    XCTAssertEqual(h.total, 6)
  }

  func testEmptyRendersNothing() {
    XCTAssertEqual(Log2Histogram().render(unit: "usecs"), [])
  }
}

final class DwellPercentilesTests: XCTestCase {
  func testLog2BucketsFromTheHDRHistogramAreExact() {
    var p = DwellPercentiles()
    var direct = Log2Histogram()
    // Both sides of every power of two up to 2^40, and the ends.
    var values: [UInt64] = [0, 1, 2, 3, 255, 256, 257, 1 << 40]
    for k in 2...39 { values += [(1 << UInt64(k)) - 1, 1 << UInt64(k), (1 << UInt64(k)) + 1] }
    for v in values {
      p.record(microseconds: v)
      direct.record(v)
    }
    XCTAssertEqual(p.log2, direct)
    XCTAssertEqual(p.count, UInt64(values.count))
  }

  func testLongerThanTrackedCountsAsTheLongestTracked() {
    var p = DwellPercentiles()
    p.record(microseconds: .max)
    XCTAssertEqual(p.count, 1)
    XCTAssertEqual(p.microseconds(at: 100), 1 << 40)
  }
}

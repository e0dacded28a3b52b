import XCTest
@testable import FinwaitCore

final class LineBufferTests: XCTestCase {
  func testDecimalsAgreeWithTheStandardLibrary() {
    var line = LineBuffer()
    for value: UInt64 in [0, 1, 9, 10, 99, 100, 65_535, 4_026_531_840, .max] {
      line.clear()
      line.append(decimal: value)
      XCTAssertEqual(line.text, String(value))
    }
    for value: Int64 in [0, -1, 42, .min, .max] {
      line.clear()
      line.append(decimal: value)
      XCTAssertEqual(line.text, String(value))
    }
    line.clear()
    line.append(decimal: 7, minimumDigits: 3)
    line.append(decimal: 123_456, minimumDigits: 2)
    XCTAssertEqual(line.text, "007123456")
  }

  func testHexAgreesWithTheStandardLibrary() {
    var line = LineBuffer()
    for value: UInt64 in [0, 0xf, 0x10, 0xffff_8881_0a2b_c000, .max] {
      line.clear()
      line.append(hex: value)
      XCTAssertEqual(line.text, String(value, radix: 16))
    }
  }

  func testPadFillsAFieldButNeverCutsIt() {
    var line = LineBuffer()
    line.append("ab")
    line.pad(from: 0, to: 5)
    let start = line.count
    line.append("longer than four")
    line.pad(from: start, to: 4)
    XCTAssertEqual(line.text, "ab   longer than four")
  }

  func testClearKeepsTheStorage() {
    var line = LineBuffer(capacity: 16)
    line.append("some text that grows the buffer past sixteen bytes")
    let capacity = line.bytes.capacity
    line.clear()
    XCTAssertEqual(line.count, 0)
    XCTAssertEqual(line.bytes.capacity, capacity)
  }
}

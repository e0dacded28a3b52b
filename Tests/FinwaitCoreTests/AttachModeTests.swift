import FinwaitCore
import XCTest

final class AttachModeTests: XCTestCase {
  /// The probe (the kernel's BTF has the tracepoint's type) decides auto;
  /// a forced mode is taken as it is, and tp_btf without the BTF is refused.
  func testTheProbeChoosesTheFirstProgram() {
    XCTAssertEqual(AttachMode.auto.first(tpBTFAvailable: true), .tpBTF)
    XCTAssertEqual(AttachMode.auto.first(tpBTFAvailable: false), .tracepoint)
    XCTAssertEqual(AttachMode.tpBTF.first(tpBTFAvailable: true), .tpBTF)
    XCTAssertNil(AttachMode.tpBTF.first(tpBTFAvailable: false))
    XCTAssertEqual(AttachMode.tracepoint.first(tpBTFAvailable: true), .tracepoint)
    XCTAssertEqual(AttachMode.tracepoint.first(tpBTFAvailable: false), .tracepoint)
  }

  /// Only auto falls back, and only from tp_btf: the classic tracepoint is the last resort.
  func testOnlyAutoFallsBackFromTpBTF() {
    XCTAssertEqual(AttachMode.auto.next(after: .tpBTF), .tracepoint)
    XCTAssertNil(AttachMode.auto.next(after: .tracepoint))
    XCTAssertNil(AttachMode.tpBTF.next(after: .tpBTF))
    XCTAssertNil(AttachMode.tracepoint.next(after: .tracepoint))
  }

  /// The spellings `--attach` takes, and the labels serve exports.
  func testFlagValues() {
    XCTAssertEqual(AttachMode.allCases.map(\.rawValue), ["auto", "tp_btf", "tracepoint"])
    XCTAssertEqual(AttachMode(rawValue: "tp_btf"), .tpBTF)
    XCTAssertNil(AttachMode(rawValue: "tp-btf"))
    XCTAssertNil(AttachMode(rawValue: "kprobe"))
    XCTAssertEqual(AttachProgram.tpBTF.rawValue, "tp_btf")
    XCTAssertEqual(AttachProgram.tracepoint.rawValue, "tracepoint")
  }
}

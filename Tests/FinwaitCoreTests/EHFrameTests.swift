import Foundation
import XCTest
@testable import FinwaitCore

final class EHFrameTests: XCTestCase {
  /// A CIE (zR, pc-relative sdata4 pointers, CFA = rsp+8 at entry) and one
  /// FDE for 0x40 bytes at `start`: +4 CFA = rsp+32; +14 remember, rsp+8;
  /// +16 restore (rsp+32 again). Then the terminator.
  static func section(at address: UInt64, start: UInt64) -> [UInt8] {
    func le32(_ v: Int64) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    let cieBody: [UInt8] = [0, 0, 0, 0, 1] + Array("zR".utf8) + [0, 1, 0x78, 16, 1, 0x1b, 0x0c, 7, 8, 0x90, 1, 0, 0]
    var bytes = le32(Int64(cieBody.count)) + cieBody
    let fdeStart = bytes.count
    let pcField = address + UInt64(fdeStart + 8)
    var fdeBody = le32(Int64(fdeStart + 4))  // back to the CIE
    fdeBody += le32(Int64(start) - Int64(pcField)) + le32(0x40) + [0]
    fdeBody += [0x44, 0x0e, 32, 0x4a, 0x0a, 0x0e, 8, 0x42, 0x0b, 0, 0, 0]
    bytes += le32(Int64(fdeBody.count)) + fdeBody
    return bytes + [0, 0, 0, 0]
  }

  func testTheCFARuleFollowsTheProgramToTheAddress() throws {
    let frames = try XCTUnwrap(EHFrame(section: Self.section(at: 0x2000, start: 0x1100), at: 0x2000))
    XCTAssertEqual(frames.cfa(at: 0x1100), .stackPointer(8))
    XCTAssertEqual(frames.cfa(at: 0x1103), .stackPointer(8))
    XCTAssertEqual(frames.cfa(at: 0x1104), .stackPointer(32))
    XCTAssertEqual(frames.cfa(at: 0x110d), .stackPointer(32))
    XCTAssertEqual(frames.cfa(at: 0x110e), .stackPointer(8), "after remember_state, def_cfa_offset 8")
    XCTAssertEqual(frames.cfa(at: 0x1110), .stackPointer(32), "restore_state")
    XCTAssertEqual(frames.cfa(at: 0x113f), .stackPointer(32))
    XCTAssertNil(frames.cfa(at: 0x1140), "past the FDE")
    XCTAssertNil(frames.cfa(at: 0x10ff))
  }

  func testTruncatedOrGarbageSectionsGiveNothingNotACrash() {
    let bytes = Self.section(at: 0x2000, start: 0x1100)
    for cut in 0..<bytes.count {
      _ = EHFrame(section: Array(bytes.prefix(cut)), at: 0x2000)?.cfa(at: 0x1105)
    }
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<500 {
      var mutated = bytes
      for _ in 0..<3 { mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
      _ = EHFrame(section: mutated, at: 0x2000)?.cfa(at: 0x1105)
    }
    XCTAssertNil(EHFrame(section: [], at: 0))
    XCTAssertNil(EHFrame(section: [0xff, 0xff, 0xff, 0xff, 1, 2], at: 0))
  }

  /// Real files: at a function's first instruction the CFA is rsp + 8 (the
  /// call has just pushed the return address), and after `push rbp; mov rbp,
  /// rsp` it is rbp + 16.
  func testRealFilesAgreeWithWhatEveryCallDoes() throws {
    let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    for path in [own, "/usr/lib/x86_64-linux-gnu/libc.so.6"] where FileManager.default.fileExists(atPath: path) {
      let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
      let frames = try XCTUnwrap(EHFrame(reading: sliceReader(bytes)), path)
      let elf = try XCTUnwrap(ELFSymbols(bytes))
      var covered = 0
      var framed = 0
      for symbol in elf.symbols where symbol.size >= 8 {
        guard let rule = frames.cfa(at: symbol.address) else { continue }
        covered += 1
        XCTAssertEqual(rule, .stackPointer(8), "\(path): \(symbol.name)")
        guard let segment = elf.segments.first(where: { symbol.address >= $0.address && symbol.address - $0.address < $0.size })
        else { continue }
        let at = Int(symbol.address - segment.address + segment.offset)
        if at + 4 <= bytes.count, bytes[at..<at + 4] == [0x55, 0x48, 0x89, 0xe5] {
          framed += 1
          XCTAssertEqual(frames.cfa(at: symbol.address + 1), .stackPointer(16), "\(path): \(symbol.name)")
          XCTAssertEqual(frames.cfa(at: symbol.address + 4), .framePointer(16), "\(path): \(symbol.name)")
        }
      }
      XCTAssertGreaterThan(covered, elf.symbols.count / 2, path)
      if path == own { XCTAssertGreaterThan(framed, 10, "Swift code keeps frame pointers") }
    }
  }

  func testTheReturnAddressIsTakenWhereTheCFARuleSaysInsteadOfTheStackTop() {
    // /srv/app mapped at 0x10000 from file offset 0, loaded at address 0.
    let app = Mapping(start: 0x10000, end: 0x20000, offset: 0, path: "/srv/app", device: "fe:01", inode: 7)
    let frames = EHFrame(section: Self.section(at: 0x2000, start: 0x1100), at: 0x2000, segments: [(0, 0, 0x10000)])
    var symbolizer = StackSymbolizer()
    let words: [UInt64] = [0x1_0001, 0x1_0002, 0x1_0003, 0x1_2345, 0x1_0005]
    func walk(_ pc: UInt64) -> [UInt64] {
      symbolizer.symbolize([0x10000 + pc, 0x15555], stackWords: words, mappings: [app], isCall: { $0 == 0x1_2345 || $0 == 0x1_0001 },
                           load: { _ in nil }, loadFrames: { _ in frames }).map(\.address)
    }
    // rsp + 32 at +4: the return address is the fourth word (rsp + 24).
    XCTAssertEqual(walk(0x1105), [0x11105, 0x1_2345, 0x15555])
    // rsp + 8 at entry: the first word.
    XCTAssertEqual(walk(0x1100), [0x11100, 0x1_0001, 0x15555])
    // No FDE covers it: the first word, as without call-frame information.
    XCTAssertEqual(walk(0x1200), [0x11200, 0x1_0001, 0x15555])
  }
}

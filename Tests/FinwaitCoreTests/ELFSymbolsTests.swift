import Foundation
import XCTest
@testable import FinwaitCore

final class ELFSymbolsTests: XCTestCase {
  /// The test bundle itself: an ELF64 file with a symbol table.
  private func ownBinary() throws -> (path: String, bytes: [UInt8]) {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
  }

  func testFindsFunctionsOfARealBinaryAndNamesAddressesInside() throws {
    let (_, bytes) = try ownBinary()
    let elf = try XCTUnwrap(ELFSymbols(bytes))
    XCTAssertFalse(elf.segments.isEmpty)
    let main = try XCTUnwrap(elf.symbols.first { $0.name == "main" })
    XCTAssertEqual(elf.symbol(containing: main.address), main)
    if main.size > 4 { XCTAssertEqual(elf.symbol(containing: main.address + 4), main) }
    XCTAssertEqual(elf.symbols.map(\.address), elf.symbols.map(\.address).sorted())
  }

  func testMapsOfThisProcessLeadToItsOwnSymbols() throws {
    let (path, bytes) = try ownBinary()
    let elf = try XCTUnwrap(ELFSymbols(bytes))
    let maps = Mapping.parse(try String(contentsOfFile: "/proc/self/maps", encoding: .utf8))
    let text = try XCTUnwrap(maps.first { $0.path == path }, "\(maps)")
    // The first executable byte of the mapping is inside a loaded segment.
    XCTAssertNotNil(elf.address(ofFileOffset: text.offset))
  }

  func testReadsOnlyHeadersAndTablesNotTheWholeFile() throws {
    let (_, bytes) = try ownBinary()
    var read = 0
    let elf = try XCTUnwrap(ELFSymbols { offset, count in
      guard offset <= UInt64(bytes.count), count <= bytes.count - Int(offset) else { return nil }
      read += count
      return Array(bytes[Int(offset)..<Int(offset) + count])
    })
    XCTAssertEqual(elf.symbols, ELFSymbols(bytes)?.symbols)
    XCTAssertLessThan(read, bytes.count / 2, "text and data are never read")
  }

  func testMalformedFilesGiveNothingNotACrash() {
    XCTAssertNil(ELFSymbols([]))
    XCTAssertNil(ELFSymbols(Array("not an elf file at all, not at all".utf8)))
    var header = [UInt8](repeating: 0, count: 64)
    header[0...5] = [0x7f, 0x45, 0x4c, 0x46, 2, 1]
    header[40] = 0xff; header[41] = 0xff; header[42] = 0xff; header[43] = 0x7f  // shoff far past the end
    header[54] = 56; header[58] = 64; header[60] = 10
    XCTAssertNil(ELFSymbols(header))
    for cut in stride(from: 0, to: 4096, by: 97) {
      _ = try? ELFSymbols(Array(ownBinary().bytes.prefix(cut)))
    }
  }

  func testMapsLines() {
    let line = "7f9bec600000-7f9bec7a5000 r-xp 00028000 fe:01 1317 /usr/lib/x86_64-linux-gnu/libc.so.6"
    XCTAssertEqual(Mapping(mapsLine: line[...]),
                   Mapping(start: 0x7f9b_ec60_0000, end: 0x7f9b_ec7a_5000, offset: 0x28000,
                           path: "/usr/lib/x86_64-linux-gnu/libc.so.6", device: "fe:01", inode: 1317))
    XCTAssertNil(Mapping(mapsLine: "7f9bec7a5000-7f9bec7fd000 r--p 001cd000 fe:01 1317 /usr/lib/libc.so.6"[...]))
    XCTAssertNil(Mapping(mapsLine: "7ffd1b3b2000-7ffd1b3d3000 rw-p 00000000 00:00 0 [stack]"[...]))
    XCTAssertNil(Mapping(mapsLine: "garbage"[...]))
  }
}

extension Mapping {
  init(start: UInt64, end: UInt64, offset: UInt64, path: String, device: String = "00:00", inode: UInt64 = 0) {
    self.init(mapsLine: "\(String(start, radix: 16))-\(String(end, radix: 16)) r-xp \(String(offset, radix: 16)) \(device) \(inode) \(path)"[...])!
  }
}

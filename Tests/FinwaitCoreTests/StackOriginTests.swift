import CFinwaitEvent
import Foundation
import XCTest
@testable import FinwaitCore

/// A closer gone before its /proc/PID/maps is read: its frames are placed
/// from what the kernel saw at its FIN (build id and file offset per frame).
final class StackOriginTests: XCTestCase {
  private func ownBinary() throws -> (path: String, bytes: [UInt8]) {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))))
  }

  /// The build id binutils reads from the same file.
  private func readelfBuildID(_ path: String) throws -> [UInt8] {
    let readelf = Process()
    readelf.executableURL = URL(fileURLWithPath: "/usr/bin/readelf")
    readelf.arguments = ["-n", path]
    let out = Pipe()
    readelf.standardOutput = out
    try readelf.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    readelf.waitUntilExit()
    let line = try XCTUnwrap(text.split(separator: "\n").first { $0.contains("Build ID:") }, text)
    let hex = Array(line.split(separator: " ").last ?? "")
    return stride(from: 0, to: hex.count - 1, by: 2).map { UInt8(String(hex[$0...$0 + 1]), radix: 16)! }
  }

  func testTheBuildIDAndCodeSegmentsOfARealBinary() throws {
    let (path, bytes) = try ownBinary()
    let code = try XCTUnwrap(ELFCode(bytes: bytes))
    let expected = try readelfBuildID(path)
    XCTAssertEqual(code.buildID, Array((expected + [UInt8](repeating: 0, count: 20)).prefix(20)))
    // The executable segments are the ones this process maps r-xp.
    let maps = Mapping.parse(try String(contentsOfFile: "/proc/self/maps", encoding: .utf8)).filter { $0.path == path }
    XCTAssertFalse(maps.isEmpty)
    for m in maps {
      XCTAssertTrue(code.executable.contains { $0.offset & ~0xfff == m.offset }, "\(m) \(code.executable)")
    }
  }

  func testMalformedNotesGiveNoBuildIDNotACrash() throws {
    let bytes = try ownBinary().bytes
    for cut in stride(from: 0, to: 4096, by: 61) { _ = ELFCode(bytes: Array(bytes.prefix(cut))) }
    XCTAssertNil(ELFCode(bytes: Array("not an elf file at all, not at all".utf8)))
    // namesz far past the end, then a note of another type.
    XCTAssertNil(ELFCode.buildID(inNotes: LittleEndianBytes([0xff, 0xff, 0xff, 0x7f, 20, 0, 0, 0, 3, 0, 0, 0])))
    let other: [UInt8] = [4, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0] + Array("GNU\0".utf8) + [1, 2, 3, 4]
    XCTAssertNil(ELFCode.buildID(inNotes: LittleEndianBytes(other)))
    let id: [UInt8] = [4, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0] + Array("GNU\0".utf8) + [9, 8, 7, 6]
    XCTAssertEqual(ELFCode.buildID(inNotes: LittleEndianBytes(other + id)), [9, 8, 7, 6])
  }

  /// Placed from the kernel's (build id, file offset) and the stack map's
  /// address, a frame of this very process lands in the mapping
  /// /proc/self/maps shows for it.
  func testAFramePlacedByBuildIDLandsInTheMappingTheProcessHas() throws {
    let (path, bytes) = try ownBinary()
    let code = try XCTUnwrap(ELFCode(bytes: bytes))
    let maps = Mapping.parse(try String(contentsOfFile: "/proc/self/maps", encoding: .utf8))
    let text = try XCTUnwrap(maps.first { $0.path == path })
    let address = text.start + 0x123
    let file = LocatedFile(path: path, device: text.device, inode: text.inode, code: code)
    let origin = StackOrigin(frames: [.init(buildID: code.buildID, fileOffset: text.fileOffset(of: address))],
                             executables: [path])
    let placed = origin.mappings(for: [address]) { $0 == code.buildID ? file : nil }
    let holder = try XCTUnwrap(placed.first { $0.holds(address) }, "\(placed)")
    XCTAssertEqual(holder.start, text.start)
    XCTAssertEqual(holder.offset, text.offset)
    XCTAssertEqual(holder.fileOffset(of: address), text.fileOffset(of: address))
    XCTAssertEqual([holder.path, holder.device], [path, text.device])
  }

  func testFramesWithoutAFileOrInAnotherFilePlaceNothing() {
    let code = ELFCode(buildID: [1] + [UInt8](repeating: 0, count: 19),
                       executable: [.init(offset: 0x1000, address: 0x1000, size: 0x2000)])
    let file = LocatedFile(path: "/usr/bin/x", device: "fd:01", inode: 7, code: code)
    let unknown = [UInt8](repeating: 2, count: 20)
    let origin = StackOrigin(frames: [nil, .init(buildID: unknown, fileOffset: 0x1500),
                                      .init(buildID: code.buildID, fileOffset: 0x1500)], executables: [])
    let placed = origin.mappings(for: [0x10, 0x7000_1500, 0x5000_1500]) { $0 == code.buildID ? file : nil }
    XCTAssertEqual(placed, [Mapping(start: 0x5000_1000, end: 0x5000_3000, offset: 0x1000, device: "fd:01", inode: 7,
                                    path: "/usr/bin/x")])
    // A frame outside the file's code (a walk gone astray into its data)
    // places nothing, and does not keep a later frame from placing it.
    let astray = StackOrigin(frames: [.init(buildID: code.buildID, fileOffset: 0x9000),
                                      .init(buildID: code.buildID, fileOffset: 0x1500)], executables: [])
    XCTAssertEqual(astray.mappings(for: [0x5000_9000], locate: { _ in file }), [])
    XCTAssertEqual(astray.mappings(for: [0x5000_9000, 0x5000_1500], locate: { _ in file }), placed)
  }

  /// Segments whose address and file offset differ by different amounts
  /// (lld, or a linker script): each is placed at its own address.
  func testEachSegmentIsPlacedAtItsOwnAddress() {
    let code = ELFCode(buildID: [UInt8](repeating: 3, count: 20),
                       executable: [.init(offset: 0x1000, address: 0x2000, size: 0x800),
                                    .init(offset: 0x1800, address: 0x4800, size: 0x100)])
    let file = LocatedFile(path: "/opt/app", device: "fd:02", inode: 9, code: code)
    let bias: UInt64 = 0x5555_0000_0000
    // A frame in the first segment, at file offset 0x1010 (address 0x2010).
    let origin = StackOrigin(frames: [.init(buildID: code.buildID, fileOffset: 0x1010)], executables: [])
    let placed = origin.mappings(for: [bias + 0x2010]) { _ in file }
    XCTAssertEqual(placed.count, 2)
    // An address in the second segment maps back to its own file offset.
    let second = bias + 0x4820
    let holder = placed.first { $0.holds(second) }
    XCTAssertEqual(holder?.fileOffset(of: second), 0x1820)
    XCTAssertEqual(placed.first { $0.holds(bias + 0x2010) }?.fileOffset(of: bias + 0x2010), 0x1010)
  }

  func testTheAnnouncementAsTheKernelWritesIt() {
    var a = fw_stack_announcement()
    withUnsafeMutableBytes(of: &a.frames) { raw in
      let frames = raw.bindMemory(to: fw_build_id_frame.self)
      frames[0].status = Int32(FW_FRAME_BUILD_ID.rawValue)
      withUnsafeMutableBytes(of: &frames[0].build_id) { $0[0] = 0xab; $0[19] = 0xcd }
      frames[0].offset = 0x1234
      frames[1].status = Int32(FW_FRAME_IP.rawValue)
      frames[1].offset = 0x7f00_0000_0001
      frames[2].status = Int32(FW_FRAME_BUILD_ID.rawValue)
      frames[3].status = Int32(FW_FRAME_EMPTY.rawValue)
    }
    // /usr/local/bin/app with a mount crossed at /usr/local: leaf first.
    withUnsafeMutableBytes(of: &a.exe) { raw in
      let slot = Int(FW_EXE_NAME_BYTES)
      for (i, name) in ["app", "bin", "", "local", "usr"].enumerated() {
        for (j, byte) in name.utf8.enumerated() { raw[i * slot + j] = byte }
      }
    }
    a.exe_depth = 5
    a.exe_root_step = 0
    let origin = StackOrigin(a)
    XCTAssertEqual(origin.frames.count, 3)
    XCTAssertEqual(origin.frames[0]?.fileOffset, 0x1234)
    XCTAssertEqual(origin.frames[0]?.buildID.first, 0xab)
    XCTAssertEqual(origin.frames[0]?.buildID.count, 20)
    XCTAssertEqual(origin.frames[0]?.buildID.last, 0xcd)
    XCTAssertNil(origin.frames[1], "an address only: the kernel could not read the file")
    XCTAssertEqual(origin.executables, ["/usr/local/bin/app"])
    // In a chroot at /usr: the path below it is tried too.
    a.exe_root_step = 4
    XCTAssertEqual(StackOrigin(a).executables, ["/usr/local/bin/app", "/local/bin/app"])
    a.exe_depth = 0
    XCTAssertEqual(StackOrigin(a).executables, [], "unknown: too deep, or a name too long")
    a.exe_depth = UInt32(FW_EXE_DEPTH) + 1
    XCTAssertEqual(StackOrigin(a).executables, [])
  }
}

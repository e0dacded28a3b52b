import Foundation
import FinwaitCore
import XCTest
@testable import FinwaitTracing

/// Naming a stack reads files the closer mapped. A closer that exited after
/// its maps were read (no map_files, no root any more) is still named from
/// the same file in our own mount namespace, and only if it is the same file.
final class ProcfsImagesTests: XCTestCase {
  /// This test process's executable mapping, as the closer's maps would show it.
  func ownExecutable() throws -> Mapping {
    let maps = try XCTUnwrap(ProcfsImages().maps(of: UInt32(getpid())))
    return try XCTUnwrap(Mapping.parse(maps).first { $0.path.hasSuffix(".xctest") || $0.path.contains("PackageTests") },
                         maps)
  }

  func testAGoneProcessIsReadFromTheSameFileByItsPath() throws {
    let mapping = try ownExecutable()
    let gone: UInt32 = 0x3fff_fff0  // above pid_max: no such process
    let files = ProcfsImages().open([mapping], pid: gone)
    let file = try XCTUnwrap(files[mapping.start], "opened by path, device and inode checked")
    XCTAssertEqual(file.read(at: 0, count: 4), [0x7F, 0x45, 0x4C, 0x46])
  }

  func testAnotherFileAtThatPathIsNotUsed() throws {
    var mapping = try ownExecutable()
    mapping.inode += 1  // replaced since it was mapped
    XCTAssertTrue(ProcfsImages().open([mapping], pid: 0x3fff_fff0).isEmpty)
  }

  func testARunningProcessIsReadThroughItsMappedFiles() throws {
    let mapping = try ownExecutable()
    let file = try XCTUnwrap(ProcfsImages().open([mapping], pid: UInt32(getpid()))[mapping.start])
    XCTAssertEqual(file.read(at: 0, count: 4), [0x7F, 0x45, 0x4C, 0x46])
  }

  /// A path named by another process (an executable's, as the kernel saw
  /// it) opens with the identity /proc/PID/maps would print; a FIFO or a
  /// directory there is refused without blocking.
  func testAFileByPathHasItsMapsIdentityAndOnlyRegularFilesOpen() throws {
    let mapping = try ownExecutable()
    let opened = try XCTUnwrap(ProcfsImages().open(path: mapping.path))
    XCTAssertEqual([opened.device, String(opened.inode)], [mapping.device, String(mapping.inode)])
    XCTAssertEqual(opened.file.read(at: 0, count: 4), [0x7F, 0x45, 0x4C, 0x46])
    let fifo = NSTemporaryDirectory() + "finwait-fifo-\(getpid())"
    unlink(fifo)
    XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    defer { unlink(fifo) }
    XCTAssertNil(ProcfsImages().open(path: fifo), "no writer: a blocking open would never return")
    XCTAssertNil(ProcfsImages().open(path: NSTemporaryDirectory()))
    var fifoMapping = mapping
    fifoMapping.path = fifo
    XCTAssertTrue(ProcfsImages().open([fifoMapping], pid: 0x3fff_fff0).isEmpty)
  }
}

import FinwaitCore
import Foundation
import XCTest
@testable import FinwaitTracing

/// Files a gone closer's frames are found in, by build id: only files at the
/// same path in finwait's own namespace are remembered.
final class FilesByBuildIDTests: XCTestCase {
  private func ownBinary() throws -> (bytes: [UInt8], code: ELFCode) {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    return (bytes, try XCTUnwrap(ELFCode(bytes: bytes)))
  }

  func testAFileLearnedFromAnotherNamespaceIsNotRemembered() throws {
    let (bytes, code) = try ownBinary()
    let processes = ScriptedProcesses()
    processes.files["/usr/lib/libx.so"] = bytes  // opens as fd:01, inode 16
    let files = FilesByBuildID()
    // A container's file at that path: another device and inode.
    let theirs = Mapping(start: 0x1000, end: 0x2000, offset: 0, device: "00:2f", inode: 77, path: "/usr/lib/libx.so")
    files.learn(theirs, in: processes)
    XCTAssertNil(files.locate(code.buildID, executables: [], in: processes))

    let ours = Mapping(start: 0x1000, end: 0x2000, offset: 0, device: "fd:01", inode: 16, path: "/usr/lib/libx.so")
    let again = FilesByBuildID()
    again.learn(ours, in: processes)
    XCTAssertEqual(again.locate(code.buildID, executables: [], in: processes)?.path, "/usr/lib/libx.so")
  }

  func testTheExecutablePathsAreTriedInOrderAndEachOpenedOnce() throws {
    let (bytes, code) = try ownBinary()
    let processes = ScriptedProcesses()
    processes.files["/chroot/app"] = bytes
    let files = FilesByBuildID()
    let found = files.locate(code.buildID, executables: ["/missing/app", "/chroot/app"], in: processes)
    XCTAssertEqual(found?.path, "/chroot/app")
    XCTAssertEqual(found?.code, code)
    XCTAssertNil(files.locate([UInt8](repeating: 9, count: 20), executables: ["/missing/app", "/chroot/app"], in: processes))
    XCTAssertEqual(processes.pathsOpened, ["/missing/app", "/chroot/app"])
  }
}

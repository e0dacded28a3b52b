import FinwaitCore
import Foundation
import XCTest
@testable import FinwaitTracing

/// /proc/PID/exe of running processes: Debian's promtool (built with Go,
/// from the `prometheus` package `make deps` installs) against /bin/sh.
final class ProgramIdentityTests: XCTestCase {
  /// `path` started with an open stdin, so it waits (promtool reads the
  /// metrics to check from stdin, sh its commands) until `body` is done.
  func withRunning(_ path: String, _ arguments: [String], _ body: (UInt32) throws -> Void) throws {
    guard FileManager.default.isExecutableFile(atPath: path) else {
      XCTFail("\(path) is missing: install Debian's prometheus package (make deps)")
      return
    }
    let process = Process()
    let input = Pipe()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer {
      // End of input ends both; a kill bounds the wait if it does not.
      try? input.fileHandleForWriting.close()
      if process.isRunning { process.terminate() }
      process.waitUntilExit()
    }
    let pid = UInt32(process.processIdentifier)
    // posix_spawn returns once the child has executed the program.
    XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"),
                   URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
    try body(pid)
  }

  func testPromtoolIsAGoBinary() throws {
    try withRunning("/usr/bin/promtool", ["check", "metrics"]) { pid in
      XCTAssertTrue(ProgramIdentity.isGoBinary(pid: pid))
    }
  }

  func testShellIsNotAGoBinary() throws {
    try withRunning("/bin/sh", []) { pid in
      XCTAssertFalse(ProgramIdentity.isGoBinary(pid: pid))
    }
  }

  func testThisProcessAndNoProcessAreNotGo() {
    XCTAssertFalse(ProgramIdentity.isGoBinary(pid: UInt32(getpid())))
    XCTAssertFalse(ProgramIdentity.isGoBinary(pid: 0x3fff_fff0))  // above pid_max: no such process
    XCTAssertFalse(ProgramIdentity.isGoBinary(pid: 0))
  }
}

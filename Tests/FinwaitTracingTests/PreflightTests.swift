import FinwaitTracing
import XCTest

final class PreflightTests: XCTestCase {
  func testKernelVersions() {
    XCTAssertTrue(Preflight.version(ofRelease: "6.18.44-fc-v669")! == (6, 18))
    XCTAssertTrue(Preflight.version(ofRelease: "5.15.0-91-generic")! == (5, 15))
    XCTAssertNil(Preflight.version(ofRelease: "garbage"))
    XCTAssertThrowsError(try Preflight.checkKernel(release: "5.4.0-150-generic")) {
      XCTAssertEqual(($0 as? FinwaitError)?.exitCode, 69)
    }
    XCTAssertNoThrow(try Preflight.checkKernel(release: "5.8.0"))
    XCTAssertNoThrow(try Preflight.checkKernel(release: "6.1.0-56-amd64"))
  }

  func testCapabilities() throws {
    let status = "Name:\tfinwait\nCapInh:\t0000000000000000\nCapEff:\t000001c000000000\n"
    XCTAssertEqual(Preflight.capabilities(fromStatus: status), 0x1c0_0000_0000)
    XCTAssertNil(Preflight.capabilities(fromStatus: "CapEff:\tzz\n"))
    XCTAssertNil(Preflight.capabilities(fromStatus: ""))
    // CAP_BPF + CAP_PERFMON (bits 39, 38) suffice; nothing does not.
    XCTAssertNoThrow(try Preflight.checkPrivileges(effectiveUID: 1000, capabilities: 0xc0_0000_0000))
    XCTAssertNoThrow(try Preflight.checkPrivileges(effectiveUID: 1000, capabilities: 1 << 21))
    XCTAssertNoThrow(try Preflight.checkPrivileges(effectiveUID: 0, capabilities: nil))
    XCTAssertThrowsError(try Preflight.checkPrivileges(effectiveUID: 1000, capabilities: 0)) {
      XCTAssertEqual(($0 as? FinwaitError)?.exitCode, 77)
    }
    XCTAssertThrowsError(try Preflight.checkPrivileges(effectiveUID: 1000, capabilities: 1 << 39))
    // Root in a container that dropped them is refused too.
    XCTAssertThrowsError(try Preflight.checkPrivileges(effectiveUID: 0, capabilities: 0)) {
      XCTAssertEqual(($0 as? FinwaitError)?.message.contains("root without capabilities"), true)
    }
  }

  func testExitCodesAreDistinct() {
    let errors: [FinwaitError] = [
      .notPermitted("x"), .noBTF(path: "/x"), .kernelTooOld(release: "4.19"),
      .bpf(stage: "load", errno: .invalidArgument), .output(.ioError), .invalidArgument("x"), .diag("x"),
    ]
    XCTAssertEqual(Set(errors.map(\.exitCode)).count, errors.count)
    XCTAssertFalse(errors.map(\.exitCode).contains(0))
    XCTAssertFalse(errors.map(\.exitCode).contains(1))
  }

  func testSocketInodeFromFdLink() {
    XCTAssertEqual(SocketOwners.socketInode(fromLink: "socket:[123456]"), 123456)
    XCTAssertNil(SocketOwners.socketInode(fromLink: "pipe:[1]"))
    XCTAssertNil(SocketOwners.socketInode(fromLink: "socket:[]"))
    XCTAssertNil(SocketOwners.socketInode(fromLink: "socket:[12x]"))
    XCTAssertNil(SocketOwners.socketInode(fromLink: "/dev/null"))
  }
}

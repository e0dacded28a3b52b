import CFinwaitBPF
import FinwaitCore
import XCTest
@testable import FinwaitTracing
#if canImport(Glibc)
import Glibc
#endif

final class PreflightTests: XCTestCase {
  func testKernelVersions() {
    XCTAssertTrue(ProcText.kernelVersion(ofRelease: "6.18.44-fc-v669")! == (6, 18))
    XCTAssertTrue(ProcText.kernelVersion(ofRelease: "5.15.0-91-generic")! == (5, 15))
    XCTAssertNil(ProcText.kernelVersion(ofRelease: "garbage"))
    XCTAssertThrowsError(try Preflight.checkKernel(release: "5.4.0-150-generic")) {
      XCTAssertEqual(($0 as? FinwaitError)?.exitCode, 69)
    }
    XCTAssertNoThrow(try Preflight.checkKernel(release: "5.8.0"))
    XCTAssertNoThrow(try Preflight.checkKernel(release: "6.1.0-56-amd64"))
  }

  /// The ring buffer probe decides, not the release: a kernel that says
  /// 6.x but cannot create one is refused, one that says 5.4 and can is not;
  /// the release is read only when the probe cannot answer.
  func testRingBufferProbeDecides() {
    let noRingBuffer = KernelProbes(ringBuffer: { false }, tpBTF: { true }, release: { "5.4.0-150-generic" })
    XCTAssertThrowsError(try Preflight.check(btfPath: nil, probes: noRingBuffer)) {
      let error = $0 as? FinwaitError
      XCTAssertEqual(error, .kernelTooOld(release: "5.4.0-150-generic"))
      XCTAssertEqual(error?.exitCode, 69)
      XCTAssertEqual(error?.message, "kernel 5.4.0-150-generic is too old: finwait needs Linux 5.8 or newer (BPF ring buffer)")
    }
    XCTAssertThrowsError(try Preflight.checkKernel(ringBuffer: false, release: "6.18.0")) {
      XCTAssertEqual($0 as? FinwaitError, .kernelTooOld(release: "6.18.0"))
    }
    XCTAssertNoThrow(try Preflight.checkKernel(ringBuffer: true, release: "5.4.0-backported"))
    XCTAssertThrowsError(try Preflight.checkKernel(ringBuffer: nil, release: "5.4.0"))
    XCTAssertNoThrow(try Preflight.checkKernel(ringBuffer: nil, release: "6.1.0"))
  }

  /// Forcing tp_btf where the probe finds no BTF for it is refused before
  /// anything is loaded: one line, exit 69.
  func testForcedTpBTFWithoutKernelBTFIsOneError() {
    let noBTF = KernelProbes(ringBuffer: { true }, tpBTF: { false }, release: { "6.18.0" })
    var notes: [String] = []
    XCTAssertThrowsError(try Tracer.start(config: KernelConfig(), btfPath: "/x.btf", mode: .tpBTF, probes: noBTF) { notes.append($0) }) {
      let error = $0 as? FinwaitError
      XCTAssertEqual(error?.exitCode, 69)
      XCTAssertEqual(error?.message, "--attach tp_btf: the kernel has no BTF for tracepoint inet_sock_set_state "
                     + "(/sys/kernel/btf/vmlinux missing); use --attach tracepoint or auto")
    }
    XCTAssertEqual(notes, [])
  }

  func testTracefsErrorsNameTheFixAndThePermission() {
    let denied = FinwaitError.tracefs(path: "/sys/kernel/tracing", errno: .notPermitted)
    XCTAssertEqual(denied.exitCode, 77)
    XCTAssertTrue(denied.message.hasPrefix("cannot mount tracefs at /sys/kernel/tracing for the classic tracepoint: "), denied.message)
    XCTAssertTrue(denied.message.hasSuffix("or grant CAP_SYS_ADMIN"), denied.message)
    XCTAssertEqual(FinwaitError.tracefs(path: "/sys/kernel/tracing", errno: .init(rawValue: ENODEV)).exitCode, 69)
  }

  func testInitialPIDNamespaceFromNSpid() {
    XCTAssertTrue(ProcText.inInitialPIDNamespace(status: "Name:\tfinwait\nNSpid:\t4242\nNStgid:\t4242\n"))
    XCTAssertFalse(ProcText.inInitialPIDNamespace(status: "NSpid:\t4242\t1\n"), "a container's: two numbers")
    XCTAssertFalse(ProcText.inInitialPIDNamespace(status: "Name:\tfinwait\n"), "no line (before 4.1): not known to be")
    XCTAssertFalse(ProcText.inInitialPIDNamespace(status: "NSpid:\n"))
    XCTAssertFalse(ProcText.inInitialPIDNamespace(status: "NSpid:\t12x\n"))
  }

  func testOwnersFromTheIteratorOnlyWhereItPays() {
    XCTAssertEqual(ProcText.openFiles(fromFileNr: "320\t0\t2466097\n"), 320)
    XCTAssertNil(ProcText.openFiles(fromFileNr: "x\t0\t1\n"))
    XCTAssertNil(ProcText.openFiles(fromFileNr: ""))
    let many = SocketOwners.iteratorFromOpenFiles
    XCTAssertEqual(SocketOwners.preferred(openFiles: 320, forced: nil, initialPIDNamespace: true), .proc)
    XCTAssertEqual(SocketOwners.preferred(openFiles: many, forced: nil, initialPIDNamespace: true), .iterator)
    XCTAssertEqual(SocketOwners.preferred(openFiles: nil, forced: nil, initialPIDNamespace: true), .iterator, "unknown: maybe many")
    XCTAssertEqual(SocketOwners.preferred(openFiles: 320, forced: "iterator", initialPIDNamespace: true), .iterator)
    XCTAssertEqual(SocketOwners.preferred(openFiles: many, forced: "proc", initialPIDNamespace: true), .proc)
    XCTAssertEqual(SocketOwners.preferred(openFiles: many, forced: "iterator", initialPIDNamespace: false), .proc,
                   "another pid namespace: the iterator's pids are not finwait's")
  }

  func testBackgroundWorkRunsOnAnotherThreadAndJoins() {
    let caller = pthread_self()
    let work = BackgroundWork { () -> (Bool, Int) in (pthread_equal(pthread_self(), caller) == 0, 42) }
    let (elsewhere, value) = work.wait()
    XCTAssertTrue(elsewhere)
    XCTAssertEqual(value, 42)
    XCTAssertEqual(work.wait().1, 42, "a second wait returns the same result")
  }

  func testCapabilities() throws {
    let status = "Name:\tfinwait\nCapInh:\t0000000000000000\nCapEff:\t000001c000000000\n"
    XCTAssertEqual(ProcText.capabilities(fromStatus: status), 0x1c0_0000_0000)
    XCTAssertNil(ProcText.capabilities(fromStatus: "CapEff:\tzz\n"))
    XCTAssertNil(ProcText.capabilities(fromStatus: ""))
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
    XCTAssertEqual(ProcText.socketInode(fromLink: "socket:[123456]"), 123456)
    XCTAssertNil(ProcText.socketInode(fromLink: "pipe:[1]"))
    XCTAssertNil(ProcText.socketInode(fromLink: "socket:[]"))
    XCTAssertNil(ProcText.socketInode(fromLink: "socket:[12x]"))
    XCTAssertNil(ProcText.socketInode(fromLink: "/dev/null"))
  }

  func testFiltersThatNameNothingAreWarnedAbout() {
    var config = KernelConfig()
    config.pid = 999_999
    config.netns = 12_345
    let lines = Preflight.warnings(for: config, namespaces: [4_026_531_840], processExists: { $0 == 1 })
    XCTAssertEqual(lines.count, 2, "\(lines)")
    XCTAssertTrue(lines[0].hasPrefix("--pid 999999: no such process"), lines[0])
    XCTAssertTrue(lines[1].hasPrefix("--netns 12345: no network namespace"), lines[1])
    config.pid = 1
    config.netns = 4_026_531_840
    XCTAssertEqual(Preflight.warnings(for: config, namespaces: [4_026_531_840], processExists: { $0 == 1 }), [])
    XCTAssertEqual(Preflight.warnings(for: KernelConfig(), namespaces: [], processExists: { _ in false }), [])
    // Without --netns, start-up does not scan every process's namespace.
    func scan() -> [UInt32] {
      XCTFail("namespaces listed without --netns")
      return []
    }
    XCTAssertEqual(Preflight.warnings(for: KernelConfig(), namespaces: scan(), processExists: { _ in true }), [])
  }

  func testBTFFilesAreRawBTFOrELF() {
    XCTAssertTrue(Preflight.looksLikeBTF(prefix: [0x9F, 0xEB, 0x01, 0x00]))
    XCTAssertTrue(Preflight.looksLikeBTF(prefix: [0xEB, 0x9F, 0x01, 0x00]))
    XCTAssertTrue(Preflight.looksLikeBTF(prefix: [0x7F, 0x45, 0x4C, 0x46]))
    XCTAssertFalse(Preflight.looksLikeBTF(prefix: Array("root:x:0:0".utf8)))
    XCTAssertFalse(Preflight.looksLikeBTF(prefix: []))
  }

  /// libbpf's own codes are not errno values: no "Unknown error 4001", and a
  /// map the kernel cannot create names the flag that sized it.
  func testLibbpfFailuresSayWhatToDo() {
    var config = KernelConfig()
    config.maxTracked = 4_000_000
    let badBTF = Tracer.error(4001, at: FW_STAGE_OPEN, btfPath: "/bin/true", config: config)
    XCTAssertEqual(badBTF.exitCode, 72)
    XCTAssertTrue(badBTF.message.hasPrefix("--btf /bin/true is not usable kernel BTF ("), badBTF.message)
    XCTAssertFalse(badBTF.message.contains("Unknown error"), badBTF.message)
    let noSection = Tracer.error(ENOENT, at: FW_STAGE_LOAD, btfPath: "/bin/true", config: config)
    XCTAssertEqual(noSection.message, "--btf /bin/true is not usable kernel BTF (no .BTF section): pass a raw BTF file "
                   + "or an ELF file with a .BTF section, such as /sys/kernel/btf/vmlinux")
    let tooBig = Tracer.error(E2BIG, at: FW_STAGE_LOAD, btfPath: nil, config: config)
    XCTAssertEqual(tooBig.exitCode, 64)
    XCTAssertTrue(tooBig.message.contains("4000000 entries") && tooBig.message.contains("lower --max-tracked"), tooBig.message)
    let verifier = Tracer.error(4007, at: FW_STAGE_LOAD, btfPath: nil, config: config)
    XCTAssertEqual(verifier.exitCode, 70)
    XCTAssertFalse(verifier.message.contains("Unknown error"), verifier.message)
    XCTAssertEqual(Tracer.error(EPERM, at: FW_STAGE_LOAD, btfPath: nil, config: config).exitCode, 77)
  }

  /// systemd's Type=notify: READY=1 as one datagram to $NOTIFY_SOCKET.
  func testReadinessNotifiesSystemd() throws {
    let path = NSTemporaryDirectory() + "finwait-notify-\(getpid())"
    unlink(path)
    let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
    XCTAssertGreaterThanOrEqual(fd, 0)
    defer {
      close(fd)
      unlink(path)
    }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    XCTAssertEqual(bound, 0)
    Readiness(notifySocket: path).signal()
    var buffer = [UInt8](repeating: 0, count: 64)
    let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
    XCTAssertEqual(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self), "READY=1")
  }
}

import SystemPackage

/// Everything that stops finwait, each with one human line and its own exit code.
public enum FinwaitError: Error, Equatable {
  /// Not root and lacking CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN).
  case notPermitted(String)
  /// No kernel BTF at the given path: CO-RE cannot relocate.
  case noBTF(path: String)
  /// The running kernel predates what the BPF program needs.
  case kernelTooOld(release: String)
  /// The kernel lacks what the requested attach program needs (`--attach tp_btf`
  /// without the kernel's own BTF for the tracepoint).
  case attachUnavailable(String)
  /// tracefs could not be mounted for the classic tracepoint.
  case tracefs(path: String, errno: Errno)
  /// `--btf` names a file libbpf cannot use as kernel BTF.
  case badBTF(path: String, reason: String)
  /// libbpf failed at a stage (open, load, attach, ring buffer).
  case bpf(stage: String, errno: Errno)
  /// libbpf failed at a stage with one of its own codes (not an errno).
  case bpfDetail(stage: String, detail: String)
  /// stdout or stderr could not be written.
  case output(Errno)
  /// A flag value that parsed but cannot be used.
  case invalidArgument(String)
  /// A sock_diag dump failed.
  case diag(String)
  /// `serve` could not listen on its address.
  case listen(address: String, errno: Errno)

  /// Exit codes, documented in the README (Exit codes). sysexits.h values where one fits.
  public var exitCode: Int32 {
    switch self {
    case .invalidArgument: 64      // EX_USAGE, as swift-argument-parser uses for bad flags
    case .kernelTooOld, .attachUnavailable: 69 // EX_UNAVAILABLE
    case let .tracefs(_, errno): errno == .notPermitted || errno == .permissionDenied ? 77 : 69
    case .bpf, .bpfDetail: 70      // EX_SOFTWARE
    case .diag, .listen: 71        // EX_OSERR
    case .noBTF, .badBTF: 72       // EX_OSFILE
    case .output: 74               // EX_IOERR
    case .notPermitted: 77         // EX_NOPERM
    }
  }

  public var message: String {
    switch self {
    case let .notPermitted(detail):
      "permission denied: \(detail); run as root, or grant CAP_BPF and CAP_PERFMON (CAP_SYS_ADMIN before Linux 5.8)"
    case let .noBTF(path):
      "kernel BTF not found at \(path): finwait needs a kernel built with CONFIG_DEBUG_INFO_BTF=y (Linux 5.8+ with BTF)"
    case let .kernelTooOld(release):
      "kernel \(release) is too old: finwait needs Linux 5.8 or newer (BPF ring buffer)"
    case let .attachUnavailable(detail):
      detail
    case let .tracefs(path, errno):
      "cannot mount tracefs at \(path) for the classic tracepoint: \(errno) (errno \(errno.rawValue)); "
        + "mount it beforehand (mount -t tracefs tracefs \(path)) or grant CAP_SYS_ADMIN"
    case let .badBTF(path, reason):
      "--btf \(path) is not usable kernel BTF (\(reason)): pass a raw BTF file or an ELF file with a .BTF section, such as /sys/kernel/btf/vmlinux"
    case let .bpfDetail(stage, detail):
      "failed to \(stage) the BPF program: \(detail); rerun with --verbose for libbpf's log"
    case let .bpf(stage, errno):
      "failed to \(stage) the BPF program: \(errno) (errno \(errno.rawValue)); rerun with --verbose for libbpf's log"
    case let .output(errno):
      "cannot write output: \(errno)"
    case let .invalidArgument(text):
      text
    case let .diag(text):
      text
    case let .listen(address, errno):
      "cannot listen on \(address): \(errno) (errno \(errno.rawValue))"
    }
  }
}

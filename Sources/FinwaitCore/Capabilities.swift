/// The Linux capabilities finwait uses, what each is for, and what is lost
/// without it: one place for the code, `finwait serve`'s warnings and
/// docs/serve.md.
public enum Capability: Int, Sendable, CaseIterable {
  case dacReadSearch = 2
  case netAdmin = 12
  case sysPtrace = 19
  case sysAdmin = 21
  case sysResource = 24
  case perfmon = 38
  case bpf = 39

  public var name: String {
    switch self {
    case .dacReadSearch: "CAP_DAC_READ_SEARCH"
    case .netAdmin: "CAP_NET_ADMIN"
    case .sysPtrace: "CAP_SYS_PTRACE"
    case .sysAdmin: "CAP_SYS_ADMIN"
    case .sysResource: "CAP_SYS_RESOURCE"
    case .perfmon: "CAP_PERFMON"
    case .bpf: "CAP_BPF"
    }
  }

  public var bit: UInt64 { 1 << UInt64(rawValue) }

  /// Needed after attach, and kept: map reads (bpf(2) checks CAP_BPF for every
  /// command before Linux 6.5), and the optional features below.
  public static let keptAfterAttach: [Capability] = [.bpf, .sysAdmin, .sysPtrace, .dacReadSearch]

  /// What is off without an optional capability (`serve` warns once with it).
  public var withoutIt: String? {
    switch self {
    case .sysAdmin:
      "cannot enter other network namespaces: sockets that existed at start are not listed, and orphans "
        + "handed to timewait are counted up to the handoff (end timewait_orphan), as with --no-reconcile"
    case .dacReadSearch:
      "cannot map cgroup ids to paths: no namespace, pod or container labels (comm only)"
    case .sysPtrace:
      "cannot read other users' /proc/PID/fd and namespaces: owners of sockets found at start may be unknown"
    case .bpf, .perfmon, .sysResource, .netAdmin: nil
    }
  }

  /// What `finwait doctor` cannot read without it (it warns once with it).
  public var doctorWithoutIt: String? {
    switch self {
    case .sysAdmin:
      "cannot enter other network namespaces (only its own is diagnosed) nor read a running finwait trace (no call sites)"
    case .sysPtrace: "cannot read other users' /proc/PID/fd: their sockets have no owner"
    case .netAdmin:
      "cannot read conntrack: peers behind a NAT are not found, and NAT entries about to expire are not flagged"
    case .bpf, .perfmon: "cannot load the socket iterator: sockets' own keepalive and TCP_LINGER2 settings are unread"
    case .dacReadSearch, .sysResource: nil
    }
  }

  /// What the doctor misses without, in report order (BPF and PERFMON are one feature: said once).
  public static func doctorMissing(effective: UInt64) -> [Capability] {
    var missing = [Capability.sysAdmin, .sysPtrace, .netAdmin].filter { effective & $0.bit == 0 }
    // CAP_SYS_ADMIN also allows BPF tracing programs (before and since 5.8).
    if effective & sysAdmin.bit == 0, let lacking = [Capability.bpf, .perfmon].first(where: { effective & $0.bit == 0 }) {
      missing.append(lacking)
    }
    return missing
  }

  /// The optional capabilities missing from `effective`, in a fixed order.
  public static func missingOptional(effective: UInt64) -> [Capability] {
    [.sysAdmin, .dacReadSearch, .sysPtrace].filter { effective & $0.bit == 0 }
  }

  /// What to keep after attach of what one has.
  public static func keepMask(effective: UInt64) -> UInt64 {
    keptAfterAttach.reduce(0) { $0 | $1.bit } & effective
  }
}

import CFinwaitEvent

/// The one configuration, from the flags to the kernel: `struct fw_config`
/// of bpf/finwait.h, copied into the BPF program's read-only data before
/// load. Filters are 0 there for "none"; here they read as optionals.
/// Connections that do not pass through the program (listed at start by
/// sock_diag) are filtered by `matches`, the same rules in user space.
public struct KernelConfig: Sendable {
  public var raw: fw_config

  public init() {
    raw = fw_config()
    raw.follow_peers = 1
    raw.hist_by = UInt8(FW_HIST_BY_PATH.rawValue)
    raw.hist_unit_ns = 1_000
    raw.ringbuf_bytes = UInt32(FW_DEFAULT_RINGBUF_BYTES)
    raw.max_tracked = UInt32(FW_DEFAULT_MAX_TRACKED)
    raw.wakeup_bytes = UInt64(FW_DEFAULT_WAKEUP_BYTES)
  }

  // MARK: Filters

  /// Only connections whose FIN this process sent.
  public var pid: UInt32? {
    get { raw.tgid == 0 ? nil : raw.tgid }
    set { raw.tgid = newValue ?? 0 }
  }

  /// Only connections whose FIN a process of this name sent (at most 15 bytes).
  public var comm: String? {
    get {
      guard raw.filter_comm != 0 else { return nil }
      return withUnsafeBytes(of: raw.comm) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }
    set {
      raw.filter_comm = newValue == nil ? 0 : 1
      withUnsafeMutableBytes(of: &raw.comm) { dst in
        dst.initializeMemory(as: UInt8.self, repeating: 0)
        if let newValue { dst.copyBytes(from: newValue.utf8.prefix(dst.count - 1)) }
      }
    }
  }

  /// Only connections with this local or remote port.
  public var port: UInt16? {
    get { raw.port == 0 ? nil : raw.port }
    set { raw.port = newValue ?? 0 }
  }

  /// Only IPv4 (4) or IPv6 (6).
  public var family: Int? {
    get { raw.family == 2 ? 4 : raw.family == 10 ? 6 : nil }
    set { raw.family = newValue == 4 ? 2 : newValue == 6 ? 10 : 0 }
  }

  /// Only this network namespace (inode number).
  public var netns: UInt32? {
    get { raw.netns == 0 ? nil : raw.netns }
    set { raw.netns = newValue ?? 0 }
  }

  /// The same filters as the program's, for records it did not produce.
  public func matches(_ r: Record) -> Bool {
    let c = r.connection
    if let pid, c.owner?.pid != pid { return false }
    if let comm, c.owner?.comm != comm { return false }
    if let port, c.endpoints.localPort != port && c.endpoints.remotePort != port { return false }
    if let family, (family == 4) != (c.endpoints.local.family == .ipv4) { return false }
    if let netns, c.netns != netns { return false }
    return true
  }

  // MARK: Features and sizes

  /// Follow local peers' CLOSE_WAIT (a map lookup per passive close).
  public var followPeers: Bool {
    get { raw.follow_peers != 0 }
    set { raw.follow_peers = newValue ? 1 : 0 }
  }

  /// `--stack`: capture the closer's user stack at FIN_WAIT1.
  public var captureStacks: Bool {
    get { raw.capture_stack != 0 }
    set { raw.capture_stack = newValue ? 1 : 0 }
  }

  /// Read the closer's user registers from the top of its kernel stack, as
  /// on kernels without bpf_task_pt_regs (before 5.15), even where that
  /// helper exists: so the tests prove that reader on any kernel.
  public var userRegistersFromStack: Bool {
    get { raw.regs_from_stack != 0 }
    set { raw.regs_from_stack = newValue ? 1 : 0 }
  }

  /// `finwait serve`: full sockets' dwells counted in the kernel by path,
  /// end, comm and cgroup, in microsecond slots with their sums.
  public var countsForExport: Bool {
    get { raw.hist_mode != 0 && raw.hist_by == UInt8(FW_HIST_BY_SERVE.rawValue) }
    set {
      histogram = newValue ? (.path, 1_000) : nil
      if newValue { raw.hist_by = UInt8(FW_HIST_BY_SERVE.rawValue) }
    }
  }

  /// `finwait hist`: full sockets' dwells counted in the kernel, by this
  /// breakdown, in slots of this many nanoseconds; nil: every end is a record.
  public var histogram: (by: Breakdown, unitNanoseconds: UInt64)? {
    get {
      guard raw.hist_mode != 0 else { return nil }
      return (Breakdown.allCases.first { $0.raw == raw.hist_by } ?? .path, UInt64(raw.hist_unit_ns))
    }
    set {
      raw.hist_mode = newValue == nil ? 0 : 1
      raw.hist_by = newValue?.by.raw ?? UInt8(FW_HIST_BY_PATH.rawValue)
      raw.hist_unit_ns = UInt32(newValue?.unitNanoseconds ?? 1_000)
    }
  }

  /// Sockets on the FIN path tracked at once; beyond it, counted as map_full.
  public var maxTracked: UInt32 {
    get { raw.max_tracked }
    set { raw.max_tracked = newValue }
  }

  /// The ring buffer's size in bytes (a power of two, a multiple of the page size).
  public var ringBufferBytes: UInt32 {
    get { raw.ringbuf_bytes }
    set { raw.ringbuf_bytes = newValue }
  }

  /// Backlog that forces a wakeup before the drain timer.
  public var wakeupBytes: UInt64 {
    get { raw.wakeup_bytes }
    set { raw.wakeup_bytes = newValue }
  }

  /// The largest `--max-tracked`: each entry costs a 128-byte record plus the
  /// hash map's overhead in locked kernel memory (2^24 entries: about 3 GiB).
  public static let maxTrackedLimit: UInt32 = 1 << 24
}

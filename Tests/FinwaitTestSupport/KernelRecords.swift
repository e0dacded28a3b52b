import CFinwaitEvent

/// Synthetic kernel records, built the way the BPF program fills them:
/// shared by the unit tests of FinwaitCore and of the tracing loop.
public enum KernelRecords {
  public static func raw(
    kind: fw_kind, socket: UInt64 = 0xffff_8881_0000_1000, ts: UInt64,
    fw1: UInt64 = 0, fw2: UInt64? = nil, path: fw_path = FW_PATH_SHUTDOWN_WR,
    syscall: fw_syscall = FW_SYSCALL_SHUTDOWN, end: fw_end = FW_END_NONE,
    owner: (pid: UInt32, comm: String)? = (4242, "nginx"),
    orphanAtEntry: Bool = false, orphanAtEnd: Bool = false, ipv6: Bool = false, stack: Int16 = -1,
    sport: UInt16 = 41234, dport: UInt16 = 8080, netns: UInt32 = 0
  ) -> fw_event {
    var e = fw_event()
    e.stack_id = stack
    e.netns = netns
    e.kind = UInt8(kind.rawValue)
    e.skaddr = socket
    e.ts_ns = ts
    e.ts_fin_wait1_ns = fw1
    var flags: Int32 = 0
    if let fw2 {
      e.ts_fin_wait2_ns = fw2
      flags |= FW_FLAG_FIN_WAIT2_SEEN
    }
    if let owner {
      flags |= FW_FLAG_OWNER_KNOWN
      e.tgid = owner.pid
      e.tid = owner.pid + 1
      e.cgroup_id = 77
      withUnsafeMutableBytes(of: &e.comm) { $0.copyBytes(from: Array(owner.comm.utf8.prefix(15))) }
    }
    if orphanAtEntry { flags |= FW_FLAG_ORPHAN_AT_ENTRY }
    if orphanAtEnd { flags |= FW_FLAG_ORPHAN_AT_END }
    e.flags = UInt8(flags)
    e.path = UInt8(path.rawValue)
    e.syscall = UInt8(syscall.rawValue)
    e.syscall_nr = 48
    e.end = UInt8(end.rawValue)
    e.sport = sport
    e.dport = dport
    if ipv6 {
      e.family = 10
      withUnsafeMutableBytes(of: &e.saddr) { $0[15] = 1 }  // ::1
      withUnsafeMutableBytes(of: &e.daddr) { b in
        b[0] = 0x20; b[1] = 0x01; b[2] = 0x0d; b[3] = 0xb8; b[15] = 2  // 2001:db8::2
      }
    } else {
      e.family = 2
      withUnsafeMutableBytes(of: &e.saddr) { $0.copyBytes(from: [10, 0, 0, 1]) }
      withUnsafeMutableBytes(of: &e.daddr) { $0.copyBytes(from: [10, 0, 0, 2]) }
    }
    return e
  }
}

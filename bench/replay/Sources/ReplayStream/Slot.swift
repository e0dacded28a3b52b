import CFinwaitEvent

/// One kernel socket address and the service it serves. Successive
/// connections reuse the address (the slab gives it back) with a new
/// ephemeral port, so sockets and 4-tuples recur the way they do on a node.
struct Slot {
  var socket: UInt64
  var family: UInt16
  var local: [UInt8]
  var remote: [UInt8]
  var remotePort: UInt16
  var netns: UInt32
  /// The pod on this node that is the far end, when the peer is local.
  var peerNetns: UInt32
  var pid: UInt32
  var comm: String
  var peerPid: UInt32
  var peerComm: String
  var cgroup: UInt64

  static let comms = [
    "nginx", "envoy", "kube-proxy", "java", "python3", "node", "haproxy", "curl",
    "redis-server", "postgres", "grpc-default-ex", "coredns", "php-fpm", "ruby", "sidecar-proxy",
  ]
  static let ports: [UInt16] = [80, 443, 8080, 5432, 6379, 9090, 53, 3306]
  static let hostNetns: UInt32 = 4_026_531_840

  init(index i: Int) {
    // tcp_sock objects are about 2.3 KB apart in their slab.
    socket = 0xffff_8881_0000_0000 &+ UInt64(i) &* 0x900
    let pod = UInt8(i % 11)
    netns = i % 3 == 0 ? Self.hostNetns : Self.hostNetns + 260 + UInt32(pod)
    peerNetns = Self.hostNetns + 300 + UInt32(i % 17)
    if i % 4 == 3 {
      family = 10
      // fd00:244::<pod> to fd00:96::<slot>: each slot's remote is its own.
      local = [0xfd, 0, 0x02, 0x44] + [UInt8](repeating: 0, count: 11) + [pod + 2]
      remote = [0xfd, 0, 0, 0x96] + [UInt8](repeating: 0, count: 10) + [UInt8(i >> 8), UInt8(i & 0xff)]
    } else {
      family = 2
      local = [10, 244, pod, 7] + [UInt8](repeating: 0, count: 12)
      remote = [10, 96, UInt8(i >> 8), UInt8(i & 0xff)] + [UInt8](repeating: 0, count: 12)
    }
    remotePort = Self.ports[i % Self.ports.count]
    pid = 1000 + UInt32(i % 300) * 7
    comm = Self.comms[i % Self.comms.count]
    peerPid = 5000 + UInt32(i % 97) * 3
    peerComm = Self.comms[(i / 7) % Self.comms.count]
    cgroup = 0x1000 + UInt64(i % 64)
  }
}

/// One connection on a slot, with times in nanoseconds relative to the
/// stream's start.
struct PlannedConnection {
  var slot: Slot
  var localPort: UInt16
  var tid: UInt32
  var source: FinSource
  var ownerKnown: Bool
  var finWait1: Int64?
  var finWait2: Int64?
  /// The local peer entered CLOSE_WAIT.
  var closeWait: Int64?

  /// The record the BPF program sends for this connection; times are
  /// relative, `SyntheticStream` turns them into CLOCK_MONOTONIC.
  func record(_ kind: fw_kind, at ts: Int64, end: fw_end = FW_END_NONE, orphanAtEntry: Bool = false,
              orphanAtEnd: Bool = false) -> (time: Int64, event: fw_event) {
    var e = fw_event()
    e.kind = UInt8(kind.rawValue)
    e.skaddr = slot.socket
    e.netns = slot.netns
    e.family = slot.family
    withUnsafeMutableBytes(of: &e.saddr) { $0.copyBytes(from: slot.local) }
    withUnsafeMutableBytes(of: &e.daddr) { $0.copyBytes(from: slot.remote) }
    e.sport = localPort
    e.dport = slot.remotePort
    e.syscall_nr = -1
    var flags: Int32 = 0
    if let closeWait {
      e.ts_peer_close_wait_ns = Relative.encode(closeWait)
      e.peer_netns = slot.peerNetns
    }
    if kind == FW_KIND_PEER_CLOSE {
      // Written in the peer's context: the owner fields are the peer's.
      flags |= FW_FLAG_OWNER_KNOWN
      setOwner(&e, pid: slot.peerPid, tid: slot.peerPid, comm: slot.peerComm)
    } else {
      e.path = UInt8(source.path.rawValue)
      e.syscall = UInt8(source.syscall.rawValue)
      e.syscall_nr = Int16(source.number)
      e.end = UInt8(end.rawValue)
      if let finWait1 { e.ts_fin_wait1_ns = Relative.encode(finWait1) }
      if let finWait2 {
        e.ts_fin_wait2_ns = Relative.encode(finWait2)
        flags |= FW_FLAG_FIN_WAIT2_SEEN
      }
      if ownerKnown {
        flags |= FW_FLAG_OWNER_KNOWN
        setOwner(&e, pid: slot.pid, tid: tid, comm: slot.comm)
      }
      if orphanAtEntry { flags |= FW_FLAG_ORPHAN_AT_ENTRY }
      if orphanAtEnd { flags |= FW_FLAG_ORPHAN_AT_END }
    }
    e.flags = UInt8(flags)
    e.ts_ns = Relative.encode(ts)
    return (ts, e)
  }

  private func setOwner(_ e: inout fw_event, pid: UInt32, tid: UInt32, comm: String) {
    e.tgid = pid
    e.tid = tid
    e.cgroup_id = slot.cgroup
    withUnsafeMutableBytes(of: &e.comm) { $0.copyBytes(from: Array(comm.utf8.prefix(15))) }
  }
}

/// Relative stream times as CLOCK_MONOTONIC values: an hour of uptime
/// first, so a record moved one period back stays positive.
enum Relative {
  static let base: Int64 = 3_600_000_000_000

  static func encode(_ t: Int64) -> UInt64 { UInt64(base + t) }
}

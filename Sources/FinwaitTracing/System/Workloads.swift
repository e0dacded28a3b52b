#if canImport(Glibc)
import Glibc
#endif
import CFinwaitCgroup
import FinwaitCore

/// Cgroup ids to containers and pods, cached: each cgroup costs one
/// open_by_handle_at the first time it is seen (no /proc read on the record
/// path), and cgroup ids are never reused, so an entry never goes stale.
public final class Workloads {
  private let mountFD: Int32
  private var cache: [UInt64: Workload?] = [:]
  private var byProcess: [UInt32: Workload?] = [:]
  /// A node has thousands of cgroups, not millions; past this the cache
  /// starts over rather than grow.
  private let capacity = 65_536

  /// Where cgroup v2 is mounted: alone (unified), or beside v1 (hybrid, systemd's
  /// `unified`). A cgroup id from BPF is always a v2 id.
  public static let mounts = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]

  /// nil when no cgroup v2 is mounted (a v1-only host: ids cannot be mapped back).
  public init?(mounts: [String] = Workloads.mounts) {
    guard let fd = mounts.lazy.map({ fw_cgroup2_open($0) }).first(where: { $0 >= 0 }) else { return nil }
    mountFD = fd
  }

  deinit { close(mountFD) }

  /// The container and pod of cgroup `id`; nil for a host cgroup, one that
  /// is gone, or 0 (unknown).
  public func workload(ofCgroup id: UInt64) -> Workload? {
    guard id != 0 else { return nil }
    if let known = cache[id] { return known }
    if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
    let found = path(ofCgroup: id).flatMap(Workload.init(cgroupPath:))
    cache[id] = found
    return found
  }

  /// For owners found through /proc (no cgroup id): the process's cgroup
  /// lines (v2, and v1 hierarchies on hybrid hosts). Cached by pid: such owners come from the
  /// listing at start, and their connections end later with the same owner.
  public func workload(ofProcess pid: UInt32) -> Workload? {
    if let known = byProcess[pid] { return known }
    if byProcess.count >= capacity { byProcess.removeAll(keepingCapacity: true) }
    let text = try? readSmallFile("/proc/\(pid)/cgroup", limit: 4096)
    let found = text.flatMap(Workload.init(procCgroupFile:))
    byProcess[pid] = found
    return found
  }

  /// Sets `record.workload` from its owner, and `peerWorkload` from its local
  /// peer's: by cgroup id when the kernel gave one, else (owners found
  /// through /proc) by process.
  public func attribute(_ record: inout Record) {
    if let owner = record.connection.owner { record.workload = workload(of: owner) }
    if let peer = record.peer?.owner { record.peerWorkload = workload(of: peer) }
  }

  /// By cgroup id when the kernel gave one, else by process.
  func workload(of owner: Owner) -> Workload? {
    owner.cgroupID != 0 ? workload(ofCgroup: owner.cgroupID) : workload(ofProcess: owner.pid)
  }

  func path(ofCgroup id: UInt64) -> String? {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = fw_cgroup_path(mountFD, id, &buffer, buffer.count)
    guard n > 0 else { return nil }
    return String(decoding: buffer[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}

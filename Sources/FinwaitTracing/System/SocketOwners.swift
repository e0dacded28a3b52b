#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore

/// Which process holds a socket, found the way `ss -p` does: socket inode ->
/// /proc/PID/fd/N -> "socket:[inode]".
public struct SocketOwners {
  /// Each process once; sockets point at it. A node with 400,000 sockets
  /// costs 8 bytes a socket, not an `Owner` (about 70) each.
  private var processes: [Owner] = []
  private var byInode: [UInt32: UInt32] = [:]

  /// Owners by socket inode, as a scan would find them (tests).
  public init(_ owners: [UInt32: Owner] = [:]) {
    for (inode, owner) in owners {
      byInode[inode] = UInt32(processes.count)
      processes.append(owner)
    }
  }

  /// Scans every process's descriptors once: O(processes x fds).
  public static func scan() -> SocketOwners {
    var owners = SocketOwners()
    var target = [CChar](repeating: 0, count: 64)
    for pid in directoryEntries("/proc") {
      guard let tgid = ProcText.processID(procEntry: pid) else { continue }
      let fdDir = "/proc/\(pid)/fd"
      var process: UInt32?
      for fd in directoryEntries(fdDir) {
        let n = readlink(fdDir + "/" + fd, &target, target.count - 1)
        guard n > 0 else { continue }
        let inode = target.withUnsafeBytes { ProcText.socketInode(fromLink: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        guard let inode, owners.byInode[inode] == nil else { continue }
        if process == nil {
          process = UInt32(owners.processes.count)
          owners.processes.append(Owner(pid: tgid, tid: tgid, comm: processName(pid) ?? "?", cgroupID: 0))
        }
        owners.byInode[inode] = process
      }
    }
    return owners
  }

  public func owner(ofInode inode: UInt32) -> Owner? {
    guard inode != 0, let process = byInode[inode] else { return nil }
    return processes[Int(process)]
  }

  static func processName(_ pid: String) -> String? {
    guard let text = try? readSmallFile("/proc/\(pid)/comm", limit: 64) else { return nil }
    return ProcText.comm(fromProcFile: text)
  }
}

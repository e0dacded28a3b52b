#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore

/// Which process holds a socket, found the way `ss -p` does: socket inode ->
/// /proc/PID/fd/N -> "socket:[inode]".
public struct SocketOwners {
  private var byInode: [UInt32: Owner] = [:]

  /// Scans every process's descriptors once: O(processes x fds).
  public static func scan() -> SocketOwners {
    var owners = SocketOwners()
    var target = [CChar](repeating: 0, count: 64)
    for pid in directoryEntries("/proc") where pid.allSatisfy(\.isNumber) {
      guard let tgid = UInt32(pid) else { continue }
      let fdDir = "/proc/\(pid)/fd"
      var comm: String?
      for fd in directoryEntries(fdDir) {
        let n = readlink(fdDir + "/" + fd, &target, target.count - 1)
        guard n > 0 else { continue }
        let link = String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let inode = socketInode(fromLink: link), owners.byInode[inode] == nil else { continue }
        if comm == nil { comm = processName(pid) }
        owners.byInode[inode] = Owner(pid: tgid, tid: tgid, comm: comm ?? "?", cgroupID: 0)
      }
    }
    return owners
  }

  public func owner(ofInode inode: UInt32) -> Owner? {
    inode == 0 ? nil : byInode[inode]
  }

  /// `socket:[12345]` -> 12345.
  public static func socketInode(fromLink link: String) -> UInt32? {
    guard link.hasPrefix("socket:["), link.hasSuffix("]") else { return nil }
    return UInt32(link.dropFirst(8).dropLast())
  }

  static func processName(_ pid: String) -> String? {
    guard let text = try? readSmallFile("/proc/\(pid)/comm", limit: 64) else { return nil }
    return String(text.prefix(while: { $0 != "\n" }))
  }
}

#if canImport(Glibc)
import Glibc
#endif
import CFinwaitDiag
import FinwaitCore
import SystemPackage

/// Network namespaces by inode number, and a way into each: a bind mount
/// under /run/netns (ip netns) or any process living in it (pods).
public final class Namespaces {
  /// finwait's own network namespace.
  public let own: UInt32
  private var paths: [UInt32: String] = [:]

  public init() {
    own = Self.inode(of: "/proc/self/ns/net") ?? 0
  }

  static func inode(of path: String) -> UInt32? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return UInt32(truncatingIfNeeded: st.st_ino)
  }

  /// Every namespace that can be entered now, own first.
  public func all() -> [UInt32] {
    rescan()
    return [own] + paths.keys.filter { $0 != own }.sorted()
  }

  /// A path to open to enter `netns`, rescanning once if unknown.
  public func path(of netns: UInt32) -> String? {
    if netns == own { return "/proc/self/ns/net" }
    if let p = paths[netns], Self.inode(of: p) == netns { return p }
    rescan()
    return paths[netns]
  }

  private func rescan() {
    var found: [UInt32: String] = [:]
    for dir in ["/run/netns", "/var/run/netns"] {
      for name in directoryEntries(dir) {
        let p = dir + "/" + name
        if let ino = Self.inode(of: p), found[ino] == nil { found[ino] = p }
      }
    }
    for pid in directoryEntries("/proc") where ProcText.processID(procEntry: pid) != nil {
      let p = "/proc/\(pid)/ns/net"
      if let ino = Self.inode(of: p), found[ino] == nil { found[ino] = p }
    }
    paths = found
  }

  /// Runs `body` with a descriptor of `netns` (-1 for our own).
  func withNamespace<R>(_ netns: UInt32, _ body: (Int32) -> R) -> R? {
    if netns == own { return body(-1) }
    guard let p = path(of: netns) else { return nil }
    let fd = open(p, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    return body(fd)
  }

  /// The namespace's net.ipv4.tcp_fin_timeout, in nanoseconds.
  public func finTimeout(of netns: UInt32) -> UInt64? {
    // At most Int32.max seconds: the product fits in UInt64.
    sysctl(.finTimeout, of: netns).flatMap(ProcText.finTimeoutSeconds(fromSysctl:)).map { UInt64($0) * 1_000_000_000 }
  }

  /// The namespace's TCP sysctls the doctor weighs.
  public func tcpSysctls(of netns: UInt32) -> TCPSysctls {
    TCPSysctls { sysctl($0, of: netns) }
  }

  /// The text of /proc/sys/net/ipv4/`name` as `netns` sees it (net sysctls
  /// are per namespace: the file must be opened from inside it).
  public func sysctl(_ name: TCPSysctls.Name, of netns: UInt32) -> String? {
    let fd = withNamespace(netns) { fw_open_in_netns($0, "/proc/sys/net/ipv4/" + name.rawValue) } ?? -1
    guard fd >= 0 else { return nil }
    let file = FileDescriptor(rawValue: fd)
    defer { try? file.close() }
    var buffer = [UInt8](repeating: 0, count: 32)
    let n = (try? buffer.withUnsafeMutableBytes { try file.read(into: $0) }) ?? 0
    return String(decoding: buffer[0..<n], as: UTF8.self)
  }

  /// The node's network namespace: PID 1's (finwait itself may run in a pod's).
  public var node: UInt32 { Self.inode(of: "/proc/1/ns/net") ?? own }
}

/// Names in a directory (without . and ..); empty if unreadable.
func directoryEntries(_ path: String) -> [String] {
  guard let dir = opendir(path) else { return [] }
  defer { closedir(dir) }
  var names: [String] = []
  while let entry = readdir(dir) {
    let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
      String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
    if name != "." && name != ".." { names.append(name) }
  }
  return names
}

#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore
import SystemPackage

/// The classic tracepoint is attached by id, which libbpf reads from tracefs:
/// under the debugfs path when debugfs is mounted, else /sys/kernel/tracing.
/// Many hosts mount neither; tp_btf does not need it.
enum Tracefs {
  static let mountPoint = "/sys/kernel/tracing"
  static let debugfsPath = "/sys/kernel/debug/tracing"
  static let eventID = "events/sock/inet_sock_set_state/id"

  /// Mounts tracefs at /sys/kernel/tracing when libbpf would find no
  /// tracepoint id; returns the path mounted (to unmount once attached), or
  /// nil when it was readable already.
  static func mountIfNeeded() throws(FinwaitError) -> String? {
    // libbpf reads the debugfs path whenever that directory exists.
    let root = access(debugfsPath, F_OK) == 0 ? debugfsPath : mountPoint
    if access("\(root)/\(eventID)", R_OK) == 0 { return nil }
    if root == debugfsPath { return nil } // mounting elsewhere would not help libbpf: attach says what failed
    if mount("tracefs", mountPoint, "tracefs", 0, nil) != 0 {
      throw .tracefs(path: mountPoint, errno: Errno(rawValue: errno))
    }
    return mountPoint
  }

  /// The attached tracepoint lives on without the mount: the node is left as found.
  static func unmount(_ path: String) {
    _ = umount2(path, Int32(MNT_DETACH))
  }
}

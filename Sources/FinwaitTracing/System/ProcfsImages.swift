#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore
import SystemPackage

/// Processes as /proc shows them, for naming call stacks.
public final class ProcfsImages: ProcessImages {
  public init() {}

  public func maps(of pid: UInt32) -> String? {
    guard pid != 0, let text = try? readSmallFile("/proc/\(pid)/maps", limit: 8 << 20), !text.isEmpty else { return nil }
    return text
  }

  public func memory(of pid: UInt32, at address: UInt64, count: Int) -> [UInt8]? {
    guard let fd = try? FileDescriptor.open(FilePath("/proc/\(pid)/mem"), .readOnly) else { return nil }
    defer { try? fd.close() }
    return Self.read(fd, at: address, count: count)
  }

  /// Through /proc/PID/map_files: the very file mapped, even if replaced
  /// since or in another mount namespace (a container's); else its path
  /// under the process's root. A process that exited after its maps were
  /// read has neither: then the path in our own mount namespace, if it is
  /// the same file (device and inode as mapped).
  public func withFile<T>(_ mapping: Mapping, pid: UInt32, _ parse: ((UInt64, Int) -> [UInt8]?) -> T?) -> T? {
    let range = String(mapping.start, radix: 16) + "-" + String(mapping.end, radix: 16)
    let candidates = ["/proc/\(pid)/map_files/\(range)", "/proc/\(pid)/root\(mapping.path)"]
    var opened = candidates.lazy.compactMap({ try? FileDescriptor.open(FilePath($0), .readOnly) }).first
    if opened == nil, let fd = try? FileDescriptor.open(FilePath(mapping.path), .readOnly) {
      if let id = Self.identity(of: fd), id == (mapping.device, mapping.inode) { opened = fd } else { try? fd.close() }
    }
    guard let fd = opened else { return nil }
    defer { try? fd.close() }
    return parse { offset, count in Self.read(fd, at: offset, count: count) }
  }

  /// `major:minor` as /proc/PID/maps prints it (`%02x:%02x`), and the inode.
  static func identity(of fd: FileDescriptor) -> (String, UInt64)? {
    var st = stat()
    guard fstat(fd.rawValue, &st) == 0 else { return nil }
    let major = (st.st_dev >> 8) & 0xfff | (st.st_dev >> 32) & ~0xfff
    let minor = st.st_dev & 0xff | (st.st_dev >> 12) & ~0xff
    func hex(_ v: UInt64) -> String {
      let digits = String(v, radix: 16)
      return digits.count < 2 ? "0" + digits : digits
    }
    return (hex(UInt64(major)) + ":" + hex(UInt64(minor)), UInt64(st.st_ino))
  }

  static func read(_ fd: FileDescriptor, at offset: UInt64, count: Int) -> [UInt8]? {
    guard count >= 0, let start = Int64(exactly: offset) else { return nil }
    var bytes = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let n = try? bytes.withUnsafeMutableBytes { buffer in
        try fd.read(fromAbsoluteOffset: start + Int64(done), into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
      }
      guard let n, n > 0 else { return nil }
      done += n
    }
    return bytes
  }
}

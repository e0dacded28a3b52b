#if canImport(Glibc)
import Glibc
#endif
import CFinwaitBPF
import FinwaitCore
import SystemPackage

/// Processes as /proc shows them, for naming call stacks.
public final class ProcfsImages: ProcessImages {
  public init() {}

  public func maps(of pid: UInt32) -> String? {
    guard pid != 0, let text = try? readSmallFile("/proc/\(pid)/maps", limit: Int(FW_MAPS_MAX_BYTES)), !text.isEmpty else { return nil }
    return text
  }

  public func memory(of pid: UInt32, at address: UInt64, count: Int) -> [UInt8]? {
    guard let fd = try? FileDescriptor.open(FilePath("/proc/\(pid)/mem"), .readOnly) else { return nil }
    defer { try? fd.close() }
    return Self.read(fd, at: address, count: count)
  }

  /// Each through /proc/PID/map_files: the very file mapped, even if
  /// replaced since or in another mount namespace (a container's); else its
  /// path under the process's root. A process that exited after its maps
  /// were read has neither: then the path in our own mount namespace, if it
  /// is the same file (device and inode as mapped).
  public func open(_ mappings: [Mapping], pid: UInt32) -> [UInt64: any MappedFile] {
    var files: [UInt64: any MappedFile] = [:]
    for mapping in mappings {
      if let fd = Self.open(mapping, pid: pid) { files[mapping.start] = OpenFile(fd) }
    }
    return files
  }

  public func open(path: String) -> OpenedFile? {
    guard let fd = Self.openRegularFile(path) else { return nil }
    guard let id = Self.identity(of: fd) else {
      try? fd.close()
      return nil
    }
    return OpenedFile(file: OpenFile(fd), device: id.0, inode: id.1)
  }

  /// A path another process named (a mapping's, an executable's as the
  /// kernel saw it) may be anything in our namespace: never block opening a
  /// FIFO there, and read only regular files.
  static func openRegularFile(_ path: String) -> FileDescriptor? {
    guard let fd = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.nonBlocking, .closeOnExec]) else {
      return nil
    }
    var st = stat()
    guard fstat(fd.rawValue, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
      try? fd.close()
      return nil
    }
    return fd
  }

  public var ownProcess: UInt32 { UInt32(getpid()) }

  static func open(_ mapping: Mapping, pid: UInt32) -> FileDescriptor? {
    let range = String(mapping.start, radix: 16) + "-" + String(mapping.end, radix: 16)
    if let fd = try? FileDescriptor.open(FilePath("/proc/\(pid)/map_files/\(range)"), .readOnly) { return fd }
    // A path under its root may have changed since it was mapped.
    if let fd = openRegularFile("/proc/\(pid)/root\(mapping.path)") { return fd }
    guard let fd = openRegularFile(mapping.path) else { return nil }
    if let id = identity(of: fd), id == (mapping.device, mapping.inode) { return fd }
    try? fd.close()
    return nil
  }

  private final class OpenFile: MappedFile {
    let fd: FileDescriptor
    init(_ fd: FileDescriptor) { self.fd = fd }
    deinit { try? fd.close() }
    func read(at offset: UInt64, count: Int) -> [UInt8]? { ProcfsImages.read(fd, at: offset, count: count) }
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

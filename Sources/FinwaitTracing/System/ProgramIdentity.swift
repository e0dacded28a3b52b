import FinwaitCore
import SystemPackage

/// What a process's executable is, for naming the program that governs a
/// stuck connection (`KnownProgram`).
public enum ProgramIdentity {
  /// No read of the ELF headers is larger than this: a real binary's
  /// section table and names are a few KiB, and a hostile header must not
  /// make us allocate what its counts claim.
  static let readLimit = 1 << 20

  /// Whether /proc/PID/exe is a Go binary (`ELFGoBinary`). Reads headers
  /// only, through the kernel's link to the very file executed (in a
  /// container's mount namespace too). False when the process is gone, is
  /// not ours to read, or is not ELF.
  public static func isGoBinary(pid: UInt32) -> Bool {
    guard pid != 0, let fd = try? FileDescriptor.open(FilePath("/proc/\(pid)/exe"), .readOnly) else { return false }
    defer { try? fd.close() }
    return ELFGoBinary.isGo { offset, count in
      count <= readLimit ? ProcfsImages.read(fd, at: offset, count: count) : nil
    }
  }
}

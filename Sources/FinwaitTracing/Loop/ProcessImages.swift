import FinwaitCore

/// What naming a call stack reads of the process that closed: its mappings,
/// a few bytes of its memory, and the files it mapped. /proc in production
/// (`ProcfsImages`), scripted processes in tests, including ones that are
/// gone before they are named.
public protocol ProcessImages: AnyObject {
  /// The text of /proc/PID/maps; nil if the process (or its memory) is gone.
  func maps(of pid: UInt32) -> String?
  /// `count` bytes of the process's memory at `address`; nil if unreadable.
  func memory(of pid: UInt32, at address: UInt64, count: Int) -> [UInt8]?
  /// Runs `parse` over the very file `mapping` maps (reads at an offset);
  /// nil if it cannot be opened.
  func withFile<T>(_ mapping: Mapping, pid: UInt32, _ parse: ((UInt64, Int) -> [UInt8]?) -> T?) -> T?
}

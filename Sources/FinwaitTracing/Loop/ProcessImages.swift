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
  /// Opens, at once, the very files `mappings` map, by each mapping's start;
  /// a file that cannot be opened is left out. Held open, the files stay
  /// readable after the process exits.
  func open(_ mappings: [Mapping], pid: UInt32) -> [UInt64: any MappedFile]
}

/// A mapped file held open: reads at file offsets.
public protocol MappedFile: AnyObject {
  /// `count` bytes at `offset`; nil past the end or on an error.
  func read(at offset: UInt64, count: Int) -> [UInt8]?
}

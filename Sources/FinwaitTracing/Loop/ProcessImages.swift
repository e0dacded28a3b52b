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
  /// A file by its path in finwait's own mount namespace, with its identity
  /// as /proc/PID/maps prints it; nil if it cannot be opened.
  func open(path: String) -> OpenedFile?
  /// What the kernel saw of stack `id`'s files when it announced it; nil
  /// if not (or no longer) known.
  func origin(ofStack id: Int16) -> StackOrigin?
  /// finwait's own pid: its libraries are the likeliest other closers'.
  var ownProcess: UInt32 { get }
}

extension ProcessImages {
  public func open(path: String) -> OpenedFile? { nil }
  public func origin(ofStack id: Int16) -> StackOrigin? { nil }
  public var ownProcess: UInt32 { 0 }
}

public struct OpenedFile {
  public var file: any MappedFile
  public var device: String
  public var inode: UInt64
  public init(file: any MappedFile, device: String, inode: UInt64) {
    self.file = file
    self.device = device
    self.inode = inode
  }
}

/// A mapped file held open: reads at file offsets.
public protocol MappedFile: AnyObject {
  /// `count` bytes at `offset`; nil past the end or on an error.
  func read(at offset: UInt64, count: Int) -> [UInt8]?
}

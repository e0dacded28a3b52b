/// One line of /proc/PID/maps: `start-end perms offset dev inode path`.
public struct Mapping: Sendable, Equatable {
  public var start: UInt64
  public var end: UInt64
  public var offset: UInt64
  /// `major:minor` of the file's device, and its inode: the file's identity
  /// across processes and mount namespaces.
  public var device: String
  public var inode: UInt64
  public var path: String

  /// Executable file mappings only (`r-xp ... /usr/lib/...`); nil for others.
  public init?(mapsLine line: Substring) {
    let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
    guard fields.count == 6, fields[1].contains("x") else { return nil }
    let range = fields[0].split(separator: "-")
    var path = fields[5].trimmingPrefixSpaces
    // Replaced or removed since it was mapped (an upgraded binary): still
    // readable through /proc/PID/map_files, named by its old path.
    if path.hasSuffix(" (deleted)") { path = path.dropLast(" (deleted)".count) }
    guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
      let offset = UInt64(fields[2], radix: 16), let inode = UInt64(fields[4]), path.hasPrefix("/"), start < end
    else { return nil }
    self.start = start
    self.end = end
    self.offset = offset
    device = String(fields[3])
    self.inode = inode
    self.path = String(path)
  }

  public static func parse(_ maps: String) -> [Mapping] {
    maps.split(separator: "\n").compactMap { Mapping(mapsLine: $0) }
  }

  /// The file offset of `address`, which the mapping must hold.
  public func fileOffset(of address: UInt64) -> UInt64 { address - start + offset }

  public func holds(_ address: UInt64) -> Bool { address >= start && address < end }
}

extension Substring {
  fileprivate var trimmingPrefixSpaces: Substring { drop(while: { $0 == " " }) }
}

import CFinwaitEvent

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

  public init(start: UInt64, end: UInt64, offset: UInt64, device: String, inode: UInt64, path: String) {
    self.start = start
    self.end = end
    self.offset = offset
    self.device = device
    self.inode = inode
    self.path = path
  }

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

/// A file found on disk with the code a stack's frames fall in.
public struct LocatedFile: Sendable, Equatable {
  public var path: String
  /// As /proc/PID/maps prints them.
  public var device: String
  public var inode: UInt64
  public var code: ELFCode

  public init(path: String, device: String, inode: UInt64, code: ELFCode) {
    self.path = path
    self.device = device
    self.inode = inode
    self.code = code
  }
}

/// What the kernel saw of a stack's files at the FIN: per frame of the
/// stack map (same walk, same order), the mapped file's build id and the
/// frame's file offset, or nil where it could not tell; and the closer's
/// executable path (its mount namespace's). Enough to place every frame
/// once the closer, and its /proc/PID/maps, are gone.
public struct StackOrigin: Sendable, Equatable {
  public struct Frame: Sendable, Equatable {
    /// As the kernel gives it: 20 bytes, a shorter id zero-padded.
    public var buildID: [UInt8]
    public var fileOffset: UInt64
    public init(buildID: [UInt8], fileOffset: UInt64) {
      self.buildID = buildID
      self.fileOffset = fileOffset
    }
  }

  public var frames: [Frame?]
  /// Where the closer's executable may be found from finwait, to try in
  /// order: its path from the mount namespace's root, then, for a closer in
  /// a chroot, its path below that chroot (finwait may share it).
  public var executables: [String]

  public init(frames: [Frame?], executables: [String]) {
    self.frames = frames
    self.executables = executables
  }

  /// As the kernel wrote it into a stack announcement.
  public init(_ a: borrowing fw_stack_announcement) {
    var frames: [Frame?] = []
    withUnsafeBytes(of: a.frames) { raw in
      for f in raw.bindMemory(to: fw_build_id_frame.self) {
        guard f.status != FW_FRAME_EMPTY.rawValue else { break }
        guard f.status == FW_FRAME_BUILD_ID.rawValue else {
          frames.append(nil)
          continue
        }
        frames.append(Frame(buildID: withUnsafeBytes(of: f.build_id) { Array($0) }, fileOffset: f.offset))
      }
    }
    self.frames = frames
    let depth = Int(a.exe_depth)
    let rootStep = Int(a.exe_root_step)
    guard depth > 0, depth <= Int(FW_EXE_DEPTH) else {
      executables = []
      return
    }
    executables = withUnsafeBytes(of: a.exe) { raw in
      let slot = Int(FW_EXE_NAME_BYTES)
      // Steps 0..<end, leaf first; an empty step is a mount crossed.
      func path(below end: Int) -> String? {
        var path = ""
        for i in (0..<end).reversed() {
          let name = raw[i * slot..<(i + 1) * slot].prefix { $0 != 0 }
          if !name.isEmpty { path += "/" + String(decoding: name, as: UTF8.self) }
        }
        return path.isEmpty ? nil : path
      }
      return [path(below: depth), rootStep > 0 && rootStep < depth ? path(below: rootStep) : nil].compactMap { $0 }
    }
  }

  /// Mappings as /proc/PID/maps would have shown them for the files the
  /// frames fall in: each located file's executable segments, placed by the
  /// load bias a frame gives (its address less the address its file offset
  /// has in the file; `addresses`: the stack map's). A frame its file's
  /// executable segments do not hold (a wrong file, or a frame-pointer walk
  /// gone astray) places nothing; another frame in the same file may.
  public func mappings(for addresses: [UInt64], locate: ([UInt8]) -> LocatedFile?) -> [Mapping] {
    var placed: [Mapping] = []
    var done: Set<[UInt8]> = []
    let page: UInt64 = 4096
    for (address, frame) in zip(addresses, frames) {
      guard let frame, !done.contains(frame.buildID), let file = locate(frame.buildID),
        let holder = file.code.executable.first(where: { frame.fileOffset >= $0.offset && frame.fileOffset - $0.offset < $0.size }),
        frame.fileOffset - holder.offset + holder.address <= address
      else { continue }
      let bias = address - (frame.fileOffset - holder.offset + holder.address)
      done.insert(frame.buildID)
      for s in file.code.executable {
        let first = s.offset & ~(page - 1)
        let start = bias &+ (s.address & ~(page - 1))
        placed.append(Mapping(start: start, end: start &+ ((s.address & (page - 1)) &+ s.size &+ page - 1) & ~(page - 1),
                              offset: first, device: file.device, inode: file.inode, path: file.path))
      }
    }
    return placed
  }
}

extension Substring {
  fileprivate var trimmingPrefixSpaces: Substring { drop(while: { $0 == " " }) }
}

import FinwaitCore

/// Files by the build id the kernel names a stack's files with, for a closer
/// gone before its /proc/PID/maps was read. Looked for, in order: among the
/// files earlier stacks were named from, at the closer's executable path as
/// the kernel saw it, and among finwait's own libraries (the C library most
/// closers call shutdown() or close() in). Only files at the same path in
/// finwait's own mount namespace are kept: a gone container process's
/// files are not found.
final class FilesByBuildID {
  /// Files remembered at most: a node's distinct binaries and libraries.
  static let capacity = 4096
  private var known: [[UInt8]: LocatedFile] = [:]
  private var ownLibrariesRead = false
  /// Paths already read: each is opened once.
  private var pathsRead: Set<String> = []

  /// A file mapped by a process whose maps were read, opened as `file`: kept
  /// if the same file is at its path in our namespace (a container's is not).
  func learn(_ mapping: Mapping, from file: any MappedFile, in images: any ProcessImages) {
    guard known.count < Self.capacity, let code = ELFCode(reading: { file.read(at: $0, count: $1) }),
      known[code.buildID] == nil, pathsRead.count < Self.capacity, pathsRead.insert(mapping.path).inserted,
      let opened = images.open(path: mapping.path), opened.device == mapping.device, opened.inode == mapping.inode
    else { return }
    known[code.buildID] = LocatedFile(path: mapping.path, device: mapping.device, inode: mapping.inode, code: code)
  }

  /// `executables`: where the closer's executable may be, in order.
  func locate(_ id: [UInt8], executables: [String], in images: any ProcessImages) -> LocatedFile? {
    for path in executables where known[id] == nil { learn(path: path, in: images) }
    if known[id] == nil && !ownLibrariesRead {
      ownLibrariesRead = true
      let own = images.ownProcess
      if own != 0, let text = images.maps(of: own) {
        for m in Mapping.parse(text) { learn(path: m.path, in: images) }
      }
    }
    return known[id]
  }

  private func learn(path: String, in images: any ProcessImages) {
    guard known.count < Self.capacity, pathsRead.count < Self.capacity, pathsRead.insert(path).inserted,
      let opened = images.open(path: path), let code = ELFCode(reading: { opened.file.read(at: $0, count: $1) }),
      known[code.buildID] == nil
    else { return }
    known[code.buildID] = LocatedFile(path: path, device: opened.device, inode: opened.inode, code: code)
  }
}

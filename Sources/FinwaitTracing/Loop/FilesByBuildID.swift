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

  /// A file a process whose maps were read had mapped: kept if the same
  /// file (device and inode) is at its path in our namespace (a container's
  /// is not).
  func learn(_ mapping: Mapping, in images: any ProcessImages) {
    learn(path: mapping.path, in: images, expecting: (mapping.device, mapping.inode))
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

  private func learn(path: String, in images: any ProcessImages, expecting identity: (String, UInt64)? = nil) {
    guard known.count < Self.capacity, pathsRead.count < Self.capacity, pathsRead.insert(path).inserted,
      let opened = images.open(path: path), identity.map({ $0 == (opened.device, opened.inode) }) ?? true,
      let code = ELFCode(reading: { opened.file.read(at: $0, count: $1) }), known[code.buildID] == nil
    else { return }
    known[code.buildID] = LocatedFile(path: path, device: opened.device, inode: opened.inode, code: code)
  }
}

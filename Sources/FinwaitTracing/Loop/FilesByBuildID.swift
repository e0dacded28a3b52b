import FinwaitCore

/// Files by the build id the kernel names a stack's files with, for a closer
/// gone before its /proc/PID/maps was read. Looked for, in order: among the
/// files earlier stacks were named from, at the closer's executable path as
/// the kernel saw it, and among finwait's own libraries (the C library most
/// closers call shutdown() or close() in). Only files at the same path in
/// finwait's own mount namespace can be found: a gone container process's
/// files are not.
final class FilesByBuildID {
  /// Files remembered at most: a node's distinct binaries and libraries.
  static let capacity = 4096
  private var known: [[UInt8]: LocatedFile] = [:]
  private var ownLibrariesRead = false
  /// Executable paths already read: each is opened once.
  private var pathsRead: Set<String> = []

  /// A file mapped by a process whose maps were read, opened as `file`.
  func learn(_ mapping: Mapping, from file: any MappedFile) {
    guard known.count < Self.capacity, let code = ELFCode(reading: { file.read(at: $0, count: $1) }),
      known[code.buildID] == nil
    else { return }
    known[code.buildID] = LocatedFile(path: mapping.path, device: mapping.device, inode: mapping.inode, code: code)
  }

  func locate(_ id: [UInt8], executable: String?, in images: any ProcessImages) -> LocatedFile? {
    if let file = known[id] { return file }
    if let executable, pathsRead.count < Self.capacity, pathsRead.insert(executable).inserted {
      learn(path: executable, in: images)
    }
    if known[id] == nil && !ownLibrariesRead {
      ownLibrariesRead = true
      let own = images.ownProcess
      if own != 0, let text = images.maps(of: own) {
        var paths: [String] = []
        for m in Mapping.parse(text) where !paths.contains(m.path) { paths.append(m.path) }
        for path in paths { learn(path: path, in: images) }
      }
    }
    return known[id]
  }

  private func learn(path: String, in images: any ProcessImages) {
    guard known.count < Self.capacity, let opened = images.open(path: path),
      let code = ELFCode(reading: { opened.file.read(at: $0, count: $1) }), known[code.buildID] == nil
    else { return }
    known[code.buildID] = LocatedFile(path: path, device: opened.device, inode: opened.inode, code: code)
  }
}

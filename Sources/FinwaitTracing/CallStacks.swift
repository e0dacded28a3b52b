import CFinwaitEvent
import FinwaitCore
import SystemPackage

/// `--stack`: the kernel's stack ids, named. A stack is named when its
/// FW_KIND_STACK record arrives (the kernel wakes us for it), while the
/// closer most likely still runs: its /proc/PID/maps places the addresses
/// and its memory shows whether a word of its stack is a return address. An id
/// whose announcement was lost is named from a record's owner, if alive.
/// Ids are never reused by the kernel, so a named stack never goes stale.
public final class CallStacks {
  private unowned let tracer: Tracer
  private var named: [Int16: CallStack] = [:]
  /// Signature -> the first id named with it.
  private var sites: [String: Int16] = [:]
  private var symbolizer = StackSymbolizer()

  public init(tracer: Tracer) {
    self.tracer = tracer
  }

  /// Handles a FW_KIND_STACK record.
  public func announce(_ raw: borrowing fw_event) {
    let id = raw.stack_id
    guard id >= 0, named[id] == nil else { return }
    named[id] = resolve(id, pid: raw.tgid, stackWords: tracer.stackTop(id))
  }

  /// The named stack of `id`; `pid` (the record's owner) places it if it was
  /// never announced.
  public func stack(_ id: Int16, pid: UInt32?) -> CallStack {
    if let known = named[id] { return known }
    let stack = resolve(id, pid: pid ?? 0, stackWords: [])
    named[id] = stack
    return stack
  }

  /// Sets `record.stack` from its connection's stack id.
  public func attribute(_ record: inout Record) {
    guard let id = record.connection.stackID else { return }
    record.stack = stack(id, pid: record.connection.owner?.pid)
  }

  private func resolve(_ id: Int16, pid: UInt32, stackWords: [UInt64]) -> CallStack {
    let addresses = tracer.stack(id)
    var frames = addresses.map { StackFrame(address: $0) }
    if pid != 0, !addresses.isEmpty, let text = try? readSmallFile("/proc/\(pid)/maps", limit: 8 << 20) {
      frames = symbolizer.symbolize(
        addresses, stackWords: stackWords, mappings: Mapping.parse(text),
        isCall: { address in Self.code(before: address, pid: pid).map(endsWithCall) ?? false },
        load: { mapping in Self.reading(mapping, pid: pid) { ELFSymbols(reading: $0) } },
        loadFrames: { mapping in Self.reading(mapping, pid: pid) { EHFrame(reading: $0) } })
    }
    let stack = CallStack(id: id, frames: frames)
    guard !frames.isEmpty else { return stack }
    let site = sites[stack.signature, default: id]
    sites[stack.signature] = site
    return site == id ? stack : CallStack(id: id, frames: frames, site: site)
  }

  /// The 7 bytes of code before `address` in the process.
  private static func code(before address: UInt64, pid: UInt32) -> [UInt8]? {
    guard address >= 7, let fd = try? FileDescriptor.open(FilePath("/proc/\(pid)/mem"), .readOnly) else { return nil }
    defer { try? fd.close() }
    return read(fd, at: address - 7, count: 7)
  }

  /// A mapped file parsed through /proc/PID/map_files: the very file mapped, even if replaced
  /// since or in another mount namespace (a container's); else its path
  /// under the process's root.
  private static func reading<T>(_ mapping: Mapping, pid: UInt32, _ parse: ((UInt64, Int) -> [UInt8]?) -> T?) -> T? {
    let range = String(mapping.start, radix: 16) + "-" + String(mapping.end, radix: 16)
    let candidates = ["/proc/\(pid)/map_files/\(range)", "/proc/\(pid)/root\(mapping.path)"]
    guard let fd = candidates.lazy.compactMap({ try? FileDescriptor.open(FilePath($0), .readOnly) }).first
    else { return nil }
    defer { try? fd.close() }
    return parse { offset, count in read(fd, at: offset, count: count) }
  }

  private static func read(_ fd: FileDescriptor, at offset: UInt64, count: Int) -> [UInt8]? {
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

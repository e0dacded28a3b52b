import CFinwaitEvent
import FinwaitCore

/// `--stack`: the kernel's stack ids, named. A stack is named when its
/// FW_KIND_STACK record arrives (the kernel wakes us for it), while the
/// closer most likely still runs: its /proc/PID/maps places the addresses
/// and its memory shows whether a word of its stack is a return address. A
/// closer already gone is placed from what the kernel saw at its FIN (each
/// frame's build id and file offset, `FilesByBuildID`). An id whose
/// announcement was lost is named from a record's owner, if alive.
/// Ids are never reused by the kernel, so a named stack never goes stale.
public final class CallStacks {
  private unowned let tracer: any StackSource
  private let processes: any ProcessImages
  private var named: [Int16: CallStack] = [:]
  /// Signature -> the first id named with it.
  private var sites: [String: Int16] = [:]
  private var symbolizer = StackSymbolizer()
  private let filesByBuildID = FilesByBuildID()

  public init(tracer: any StackSource, processes: any ProcessImages = ProcfsImages()) {
    self.tracer = tracer
    self.processes = processes
  }

  /// Handles a FW_KIND_STACK record.
  public func announce(_ raw: borrowing fw_event) {
    let id = raw.stack_id
    guard id >= 0, named[id] == nil else { return }
    named[id] = resolve(id, pid: raw.tgid, stackWords: tracer.stackTop(id))
  }

  /// The named stack of `id`; `pid` (the record's owner) places it if it was
  /// never announced (the doctor names another tracer's stacks this way).
  public func stack(_ id: Int16, pid: UInt32?) -> CallStack {
    if let known = named[id] { return known }
    let stack = resolve(id, pid: pid ?? 0, stackWords: tracer.stackTop(id))
    named[id] = stack
    return stack
  }

  /// Sets `record.stack` from its connection's stack id.
  public func attribute(_ record: inout Record) {
    guard let id = record.connection.stackID else { return }
    record.stack = stack(id, pid: record.connection.owner?.pid)
  }

  /// The closer's maps as read, else as the kernel's view of the stack's
  /// files places them; nil if neither.
  private func mappings(of pid: UInt32, stack id: Int16, _ addresses: [UInt64]) -> [Mapping]? {
    if let text = processes.maps(of: pid) { return Mapping.parse(text) }
    guard let origin = processes.origin(ofStack: id) else { return nil }
    let placed = origin.mappings(for: addresses) { [filesByBuildID, processes] buildID in
      filesByBuildID.locate(buildID, executables: origin.executables, in: processes)
    }
    return placed.isEmpty ? nil : placed
  }

  private func resolve(_ id: Int16, pid: UInt32, stackWords: [UInt64]) -> CallStack {
    let addresses = tracer.stack(id)
    var frames = addresses.map { StackFrame(address: $0) }
    if pid != 0, !addresses.isEmpty, let mappings = mappings(of: pid, stack: id, addresses) {
      // Every file a frame or a stack word falls in is opened before any is
      // parsed: a closer that exits meanwhile is still named from its files.
      let wanted = mappings.filter { m in addresses.contains(where: m.holds) || stackWords.contains(where: m.holds) }
      let files = processes.open(wanted, pid: pid)
      for m in wanted { filesByBuildID.learn(m, in: processes) }
      let processes = processes
      frames = symbolizer.symbolize(
        addresses, stackWords: stackWords, mappings: mappings,
        isCall: { address in
          // The code before a return address, from the file that maps it
          // (readable after the process exits), else from its memory.
          if let m = wanted.first(where: { $0.holds(address) }), let file = files[m.start], m.fileOffset(of: address) >= 7 {
            return file.read(at: m.fileOffset(of: address) - 7, count: 7).map(endsWithCall) ?? false
          }
          return address >= 7 ? processes.memory(of: pid, at: address - 7, count: 7).map(endsWithCall) ?? false : false
        },
        load: { mapping in files[mapping.start].flatMap { file in ELFSymbols(reading: { file.read(at: $0, count: $1) }) } },
        loadFrames: { mapping in files[mapping.start].flatMap { file in EHFrame(reading: { file.read(at: $0, count: $1) }) } })
    }
    let stack = CallStack(id: id, frames: frames)
    guard !frames.isEmpty else { return stack }
    let site = sites[stack.signature, default: id]
    sites[stack.signature] = site
    return site == id ? stack : CallStack(id: id, frames: frames, site: site)
  }
}

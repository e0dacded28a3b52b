import CFinwaitEvent
import FinwaitCore

/// Where a tracer's captured user stacks are read: the running `Tracer`, or
/// another process's (`RunningTracer`, for the doctor).
public protocol StackSource: AnyObject {
  /// The user-space return addresses of stack `id`, innermost first; empty if unknown.
  func stack(_ id: Int16) -> [UInt64]
  /// The user stack words noted with stack `id`'s first capture; empty if none.
  func stackTop(_ id: Int16) -> [UInt64]
}

extension StackSource {
  /// A stack's return addresses from `read`, a C call that fills at most
  /// `max` of them and returns how many (or -errno).
  static func frames(_ read: (UnsafeMutablePointer<UInt64>, Int32) -> Int32) -> [UInt64] {
    var ips = [UInt64](repeating: 0, count: Int(FW_STACK_DEPTH))
    let n = ips.withUnsafeMutableBufferPointer { read($0.baseAddress!, Int32($0.count)) }
    return n > 0 ? Array(ips.prefix(Int(n))) : []
  }

  /// The stack words of a note `read` fills (0, or -errno); empty if none.
  static func words(_ read: (UnsafeMutablePointer<fw_stack_note>) -> Int32) -> [UInt64] {
    var note = fw_stack_note()
    guard read(&note) == 0 else { return [] }
    let words = withUnsafeBytes(of: note.top) { Array($0.bindMemory(to: UInt64.self)) }
    return words.allSatisfy { $0 == 0 } ? [] : words
  }
}

/// Where the tracing loop's records come from, and the kernel state behind
/// them: the libbpf `Tracer` in production, a `ScriptedRecordSource` in
/// tests and in bench/replay. Everything the loop asks of the kernel goes
/// through here, so the loop runs the same with either.
public protocol RecordSource: StackSource {
  /// Waits up to `timeoutMilliseconds` for a wakeup, then hands every queued
  /// record to `body`, in ring-buffer order. Returns how many; a signal returns 0.
  @discardableResult
  func drain(timeoutMilliseconds: Int32, _ body: (borrowing fw_event) -> Void) throws(FinwaitError) -> Int
  /// What the program counted: drops, full maps, skipped runs.
  var counters: KernelCounters { get }
  /// Stops new records; what is queued can still be drained.
  func detach()
  /// Every entry of the per-socket map, as stored (`kind` 0 before FIN_WAIT2).
  func forEachTracked(_ body: (fw_event) -> Void)
  /// Marks the entry `copy` was read from as in FIN_WAIT2 since `at`
  /// (inferred); false if the program changed or removed it meanwhile.
  func repairFinWait2(_ copy: fw_event, at: UInt64) -> Bool
  /// Deletes the entry `copy` was read from, if the program has not changed it.
  func forget(_ copy: fw_event) -> Bool
  /// Hands over, and removes, each histogram the kernel counted since the
  /// last call: its key, and per slot the count and the sum of dwells (ns).
  func takeHistograms(_ body: (fw_hist_key, _ slots: UnsafeBufferPointer<UInt64>, _ sums: UnsafeBufferPointer<UInt64>) -> Void)
  /// The kernel program records come from; nil for a scripted source.
  var attachProgram: AttachProgram? { get }
  /// What stacks are named from, given the loop's `processes`: a source
  /// that reads a closer's maps when its stack is announced serves those.
  func processImages(over processes: any ProcessImages) -> any ProcessImages
}

extension RecordSource {
  public var attachProgram: AttachProgram? { nil }
  public func processImages(over processes: any ProcessImages) -> any ProcessImages { processes }

  /// Moves the histograms the kernel counted since the last call into `intervals`.
  public func takeHistograms(into intervals: inout IntervalHistograms) {
    takeHistograms { key, slots, _ in intervals.add(kernel: key, slots: slots) }
  }

  /// Sockets the kernel map holds in FIN_WAIT2 right now, as IN_FLIGHT records.
  public func inFlight() -> [fw_event] {
    var events: [fw_event] = []
    forEachTracked { raw in
      guard raw.finWait2At != nil else { return }
      var copy = raw
      copy.kind = UInt8(FW_KIND_IN_FLIGHT.rawValue)
      events.append(copy)
    }
    return events
  }
}

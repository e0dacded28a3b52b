import CFinwaitEvent
import FinwaitCore

/// What the tracing loop does with each raw ring-buffer record, for every mode:
/// a stack announcement goes to the stack names, any other record is decoded
/// and tracked, and one that cannot be decoded is counted, never dropped
/// silently.
struct RecordIntake {
  /// Records that could not be decoded (a kernel and user space that disagree).
  private(set) var undecodable = 0

  mutating func take(
    _ raw: borrowing fw_event, tracker: inout ConnectionTracker, stacks: CallStacks?, emit: (Record) -> Void
  ) {
    if raw.kind == FW_KIND_STACK.rawValue {
      stacks?.announce(raw)
      return
    }
    do {
      let event = try Event(decoding: raw)
      tracker.handle(event, emit: emit)
    } catch {
      undecodable += 1
    }
  }
}

import CFinwaitEvent
import FinwaitCore

/// The per-record work of finwait's ring-buffer callback (SessionState in
/// Sources/FinwaitTracing/TraceSession.swift): decode, track, summarize and,
/// optionally, format the JSON line, without writing it anywhere.
public final class Consumer {
  // As in SessionState: no runtime exclusivity check per record (5% of the
  // instructions here); one thread, and the callback runs inside drain.
  @exclusivity(unchecked) public private(set) var tracker: ConnectionTracker
  @exclusivity(unchecked) public private(set) var summary = Summary()
  public private(set) var undecodable = 0
  public private(set) var emitted = 0
  /// Bytes of JSON formatted, so the formatting cannot be optimized away.
  public private(set) var jsonBytes = 0
  private let formatsJSON: Bool
  private var json: JSONFormat
  private var line = LineBuffer()

  /// The tracer's defaults: stuck after the fin timeout (60 s), orphans
  /// followed into timewait.
  public init(tracingSince: UInt64, formatsJSON: Bool, stuckAfter: UInt64 = 60_000_000_000) {
    tracker = ConnectionTracker(stuckAfter: stuckAfter, tracingSince: tracingSince, reconcilesOrphans: true)
    self.formatsJSON = formatsJSON
    json = JSONFormat(clock: WallClock(offset: 1_700_000_000_000_000_000))
  }

  /// Not inlined: the ring-buffer callback is a call of its own, and
  /// profilers can collect from here down.
  @inline(never)
  public func consume(_ raw: borrowing fw_event) {
    do {
      let event = try Event(decoding: raw)
      tracker.handle(event) { emit($0) }
    } catch {
      undecodable += 1
    }
  }

  /// What the poll loop does between drains.
  public func tick(now: UInt64) {
    tracker.reportStuck(now: now) { emit($0) }
  }

  private func emit(_ record: Record) {
    summary.add(record)
    emitted += 1
    guard formatsJSON else { return }
    line.clear()
    json.write(record, to: &line)
    jsonBytes &+= line.count
  }
}

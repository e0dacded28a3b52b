import CFinwaitEvent
import FinwaitCore

/// A record source that plays a script instead of a kernel: what each timed
/// drain finds queued, the per-socket map, counters, histograms and stacks.
/// The tracing loop runs on it unchanged (unit tests without root, and
/// bench/replay, which measures the shipped intake with it), as swift-nio's
/// EmbeddedChannel runs handlers without a network.
public final class ScriptedRecordSource: RecordSource {
  /// What each timed drain (timeout above 0) adds to the queue, in order.
  public var batches: [[fw_event]]
  /// Records queued now: a drain of any timeout hands these over first.
  public var queued: [fw_event] = []
  /// The per-socket map by socket address, as the program would hold it.
  public var tracked: [UInt64: fw_event] = [:]
  public var counters = KernelCounters()
  /// Histograms the kernel "counted", taken (and cleared) by `takeHistograms`.
  /// `sums`: per slot, the dwells' sum in ns; empty: none.
  public var histograms: [(key: fw_hist_key, slots: [UInt64], sums: [UInt64])] = []
  public var stacks: [Int16: [UInt64]] = [:]
  public var stackTops: [Int16: [UInt64]] = [:]
  /// Stack announcements taken "on their wakeup", each with the closer's
  /// maps as read then (nil: already gone), as the `Tracer`'s reader thread
  /// takes them: the loop gets them at its next drain, before `queued`.
  public var announced: [(event: fw_event, maps: String?)] = []
  /// What the kernel saw of an announced stack's files, by stack id, handed
  /// over with its announcement.
  public var origins: [Int16: StackOrigin] = [:]
  private lazy var announcements = Announcements { [unowned self] each in
    let taken = announced
    announced.removeAll()
    for (event, maps) in taken {
      let origin = origins[event.stack_id]
      guard var maps else {
        each(event, origin, nil)
        continue
      }
      maps.withUTF8 { each(event, origin, $0) }
    }
  }
  /// Runs before each timed drain with its index (advance a clock, change the node).
  public var beforeDrain: (Int) -> Void = { _ in }
  public private(set) var timedDrains = 0
  public private(set) var detached = false

  public init(batches: [[fw_event]] = []) {
    self.batches = batches
  }

  /// Every batch was handed over: the script is played.
  public var isExhausted: Bool { timedDrains >= batches.count && queued.isEmpty }

  @discardableResult
  public func drain(timeoutMilliseconds: Int32, _ body: (borrowing fw_event) -> Void) throws(FinwaitError) -> Int {
    if timeoutMilliseconds > 0 && !detached {
      beforeDrain(timedDrains)
      if timedDrains < batches.count { queued += batches[timedDrains] }
      timedDrains += 1
    }
    let announcedNow = announcements.deliver(body)
    let handed = queued
    queued.removeAll()
    for raw in handed { body(raw) }
    return announcedNow + handed.count
  }

  public func processImages(over processes: any ProcessImages) -> any ProcessImages {
    announcements.images(over: processes)
  }

  public func detach() { detached = true }

  public func forEachTracked(_ body: (fw_event) -> Void) {
    for key in tracked.keys.sorted() { body(tracked[key]!) }
  }

  public func repairFinWait2(_ copy: fw_event, at: UInt64) -> Bool {
    guard var now = tracked[copy.skaddr], now.ts_ns == copy.ts_ns, now.flags == copy.flags else { return false }
    now.ts_fin_wait2_ns = at
    now.ts_ns = at
    now.flags |= UInt8(FW_FLAG_FIN_WAIT2_SEEN | FW_FLAG_FIN_WAIT2_INFERRED)
    tracked[copy.skaddr] = now
    return true
  }

  public func forget(_ copy: fw_event) -> Bool {
    guard let now = tracked[copy.skaddr], now.ts_ns == copy.ts_ns, now.flags == copy.flags else { return false }
    tracked[copy.skaddr] = nil
    return true
  }

  public func takeHistograms(_ body: (fw_hist_key, UnsafeBufferPointer<UInt64>, UnsafeBufferPointer<UInt64>) -> Void) {
    for (key, slots, sums) in histograms {
      slots.withUnsafeBufferPointer { s in sums.withUnsafeBufferPointer { body(key, s, $0) } }
    }
    histograms.removeAll()
  }

  public func stack(_ id: Int16) -> [UInt64] { stacks[id] ?? [] }

  public func stackTop(_ id: Int16) -> [UInt64] { stackTops[id] ?? [] }
}

/// Every loss and repair finwait knows of, in one account that every mode
/// reports the same way: the same names in text, in JSON (`summary` keys) and
/// in the top header.
public struct LossAccount: Sendable, Equatable {
  public var kernel: KernelCounters
  public var tracker: ConnectionTracker.Counters
  /// Records that could not be decoded (a kernel and user space that disagree).
  public var undecodable: Int

  public init(kernel: KernelCounters = KernelCounters(), tracker: ConnectionTracker.Counters = .init(), undecodable: Int = 0) {
    self.kernel = kernel
    self.tracker = tracker
    self.undecodable = undecodable
  }

  /// One counter: its name (also the JSON key and the name in every mode's
  /// output). What each counts is in docs/design.md (Nothing is lost silently).
  public enum Counter: String, CaseIterable, Sendable {
    /// Records lost: the ring buffer was full.
    case ringbufDrops = "ringbuf_drops"
    /// Connections not tracked: the per-socket map was full (--max-tracked).
    case mapFull = "map_full"
    /// Connections whose end was never seen (reported with end `lost`).
    case lostEnds = "lost_ends"
    /// Records user space could not decode.
    case undecodable
    /// FIN_WAIT2 starts of sockets whose FIN_WAIT1 was not seen.
    case unseenStart = "unseen_start"
    /// State changes the kernel skipped (program busy on that CPU).
    case recursionMisses = "recursion_misses"
    /// FIN_WAIT2 starts the program missed, found through sock_diag.
    case recoveredStarts = "recovered_starts"
    /// FIN_WAIT1 entries whose socket was gone when audited.
    case staleEntries = "stale_entries"
    /// Dwells not counted: the histogram map was full.
    case histFull = "hist_full"
    /// Call stacks not kept: their stack-map bucket held another.
    case stackLost = "stack_lost"
  }

  public subscript(counter: Counter) -> UInt64 {
    switch counter {
    case .ringbufDrops: kernel.ringbufDrops
    case .mapFull: kernel.mapFull
    case .lostEnds: UInt64(tracker.lostEnds)
    case .undecodable: UInt64(undecodable)
    case .unseenStart: kernel.unseenStart
    case .recursionMisses: kernel.recursionMisses
    case .recoveredStarts: UInt64(tracker.recoveredStarts)
    case .staleEntries: UInt64(tracker.staleEntries)
    case .histFull: kernel.histFull
    case .stackLost: kernel.stackLost
    }
  }

  /// Whether this kernel counts `counter`; one it does not is shown as
  /// unknown (`n/a`, JSON null, no metric), never as 0.
  public func isCounted(_ counter: Counter) -> Bool {
    counter != .recursionMisses || kernel.recursionMissesCounted
  }

  /// `ringbuf_drops 0, map_full 0, ...`: every counter, in one order.
  public var text: String {
    Counter.allCases.map { "\($0.rawValue) \(isCounted($0) ? "\(self[$0])" : "n/a")" }.joined(separator: ", ")
  }

  /// Only the counters above 0 (`none` if there are none): where space is short.
  public var nonZeroText: String {
    let shown = Counter.allCases.filter { self[$0] > 0 }
    return shown.isEmpty ? "none" : shown.map { "\($0.rawValue) \(self[$0])" }.joined(separator: ", ")
  }

  /// Adds every counter to a JSON object under its name.
  public func add(to o: inout JSONObject) {
    for counter in Counter.allCases {
      if isCounted(counter) { o.add(counter.rawValue, number: self[counter]) } else { o.addNull(counter.rawValue) }
    }
  }
}

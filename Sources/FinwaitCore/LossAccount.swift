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

  /// One counter: its name (also the JSON key) and what it counts.
  public enum Counter: String, CaseIterable, Sendable {
    case ringbufDrops = "ringbuf_drops"
    case mapFull = "map_full"
    case lostEnds = "lost_ends"
    case undecodable
    case unseenStart = "unseen_start"
    case recursionMisses = "recursion_misses"
    case recoveredStarts = "recovered_starts"
    case staleEntries = "stale_entries"
    case histFull = "hist_full"
    case stackLost = "stack_lost"

    /// What it means, for --help-style text and docs.
    public var meaning: String {
      switch self {
      case .ringbufDrops: "records lost: the ring buffer was full"
      case .mapFull: "connections not tracked: the per-socket map was full (--max-tracked)"
      case .lostEnds: "connections whose end was never seen (reported with end lost)"
      case .undecodable: "records user space could not decode"
      case .unseenStart: "FIN_WAIT2 starts of sockets whose FIN_WAIT1 was not seen"
      case .recursionMisses: "state changes the kernel skipped (program busy on that CPU)"
      case .recoveredStarts: "FIN_WAIT2 starts the program missed, found through sock_diag"
      case .staleEntries: "FIN_WAIT1 entries whose socket was gone when audited"
      case .histFull: "dwells not counted: the histogram map was full"
      case .stackLost: "call stacks not kept: their stack-map bucket held another"
      }
    }

    /// Losses proper, as opposed to repairs and facts about the kernel.
    public var isLoss: Bool {
      switch self {
      case .ringbufDrops, .mapFull, .lostEnds, .undecodable, .histFull, .stackLost: true
      case .unseenStart, .recursionMisses, .recoveredStarts, .staleEntries: false
      }
    }
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

  /// Records and connections lost for good (not repairs).
  public var totalLost: UInt64 {
    Counter.allCases.filter(\.isLoss).reduce(0) { $0 + self[$1] }
  }

  /// `ringbuf_drops 0, map_full 0, ...`: every counter, in one order.
  public var text: String {
    Counter.allCases.map { "\($0.rawValue) \(self[$0])" }.joined(separator: ", ")
  }

  /// Only the counters above 0 (`none` if there are none): where space is short.
  public var nonZeroText: String {
    let shown = Counter.allCases.filter { self[$0] > 0 }
    return shown.isEmpty ? "none" : shown.map { "\($0.rawValue) \(self[$0])" }.joined(separator: ", ")
  }

  /// Adds every counter to a JSON object under its name.
  public func add(to o: inout JSONObject) {
    for counter in Counter.allCases { o.add(counter.rawValue, number: self[counter]) }
  }
}

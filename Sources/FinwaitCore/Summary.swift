/// What finwait prints when it stops: dwell histograms per path, counts per
/// end, and every loss it knows of.
public struct Summary: Sendable {
  /// Exact dwells (FIN_WAIT2 began and ended while traced), in microseconds.
  public private(set) var dwellByPath: [Path: Log2Histogram] = [:]
  public private(set) var ends: [End: Int] = [:]
  public private(set) var stuck = 0
  /// Longest lower bound among connections still in FIN_WAIT2 at exit.
  public private(set) var oldestAtExit: UInt64?

  public init() {}

  /// Connections already in FIN_WAIT2 when tracing began.
  public private(set) var existing = 0

  public mutating func add(_ r: Record) {
    switch r.kind {
    case .stuck:
      stuck += 1
      return
    case .existing:
      existing += 1
      return
    case .finWait2:
      break
    }
    if let end = r.end { ends[end, default: 0] += 1 }
    switch r.dwell {
    case let .exact(ns):
      dwellByPath[r.connection.path, default: Log2Histogram()].record(ns / 1_000)
    case let .atLeast(ns) where r.end == .tracerExit:
      oldestAtExit = max(oldestAtExit ?? 0, ns)
    default:
      break
    }
  }

  public struct Losses: Sendable, Equatable {
    public var kernel: KernelCounters
    public var tracker: ConnectionTracker.Counters
    public var undecodable: Int

    public init(kernel: KernelCounters, tracker: ConnectionTracker.Counters, undecodable: Int) {
      self.kernel = kernel
      self.tracker = tracker
      self.undecodable = undecodable
    }
  }

  public func text(losses: Losses, tracedFor ns: UInt64) -> [String] {
    var lines = ["", "Traced for \(formatDuration(nanoseconds: ns))."]
    if dwellByPath.isEmpty {
      lines.append("No connection began and ended FIN_WAIT2 while traced.")
    } else {
      lines.append("FIN_WAIT2 dwell of connections that ended while traced (peer_fin, reset):")
    }
    for path in dwellByPath.keys.sorted() {
      guard let histogram = dwellByPath[path] else { continue }
      lines.append("")
      lines.append("path = \(path.rawValue)")
      lines += histogram.render(unit: "usecs")
    }
    lines.append("")
    lines.append("Ends: " + End.allCases.map { "\($0.rawValue) \(ends[$0, default: 0])" }.joined(separator: ", "))
    if let oldest = oldestAtExit {
      lines.append("Still in FIN_WAIT2 at exit: \(ends[.tracerExit, default: 0]), oldest >= \(formatDuration(nanoseconds: oldest))")
    }
    if ends[.timewaitOrphan, default: 0] > 0 {
      lines.append("timewait_orphan: orphans handed to timewait sockets whose end could not be followed; not counted in the histograms.")
    }
    lines.append("Stuck warnings: \(stuck); already in FIN_WAIT2 at start: \(existing)")
    lines.append(
      "Lost: ring buffer drops \(losses.kernel.ringbufDrops), untracked (socket map full) \(losses.kernel.mapFull), "
        + "ends lost \(losses.tracker.lostEnds), undecodable records \(losses.undecodable); "
        + "FIN_WAIT2 starts not seen \(losses.kernel.unseenStart)")
    return lines
  }

  public func json(losses: Losses, tracedFor ns: UInt64) -> String {
    var o = JSONObject()
    o.add("type", string: "summary")
    o.add("traced_ns", number: ns)
    var paths = JSONObject()
    for path in dwellByPath.keys.sorted() {
      guard let histogram = dwellByPath[path] else { continue }
      let last = histogram.buckets.lastIndex(where: { $0 > 0 }) ?? 0
      let buckets = histogram.buckets[0...last].map(String.init).joined(separator: ",")
      var p = JSONObject()
      p.add("count", number: histogram.total)
      p.add("log2_usecs", raw: "[" + buckets + "]")
      paths.add(path.rawValue, raw: p.closed)
    }
    o.add("dwell_by_path", raw: paths.closed)
    var endCounts = JSONObject()
    for end in End.allCases { endCounts.add(end.rawValue, number: UInt64(ends[end, default: 0])) }
    o.add("ends", raw: endCounts.closed)
    o.add("stuck", number: UInt64(stuck))
    o.add("existing", number: UInt64(existing))
    o.add("ringbuf_drops", number: losses.kernel.ringbufDrops)
    o.add("map_full", number: losses.kernel.mapFull)
    o.add("lost_ends", number: UInt64(losses.tracker.lostEnds))
    o.add("undecodable", number: UInt64(losses.undecodable))
    o.add("unseen_start", number: losses.kernel.unseenStart)
    return o.closed
  }
}

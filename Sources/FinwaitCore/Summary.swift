/// What finwait prints when it stops: dwell histograms per path, counts per
/// end, and every loss it knows of.
public struct Summary: Sendable {
  /// Indexed by `Path.ordinal` and `End.ordinal`, not keyed: this runs for
  /// every record, and these enums hash through their String raw values.
  /// Exact dwells per path, in microseconds; the log2 histograms are derived.
  private var percentiles = [DwellPercentiles](repeating: DwellPercentiles(), count: Path.allCases.count)
  private var endCounts = [Int](repeating: 0, count: End.allCases.count)

  /// All paths together: merged when asked, so a record costs one recording.
  public var allPercentiles: DwellPercentiles {
    percentiles.reduce(into: DwellPercentiles()) { $0.add($1) }
  }

  /// Percentiles of the exact dwells of `path`.
  public func percentiles(of path: Path) -> DwellPercentiles { percentiles[path.ordinal] }

  /// Exact dwells (FIN_WAIT2 began and ended while traced), in microseconds,
  /// for the paths that had any.
  public var dwellByPath: [Path: Log2Histogram] {
    var byPath: [Path: Log2Histogram] = [:]
    for path in Path.allCases where percentiles[path.ordinal].count > 0 { byPath[path] = percentiles[path.ordinal].log2 }
    return byPath
  }

  /// Records per end, for the ends seen.
  public var ends: [End: Int] {
    var byEnd: [End: Int] = [:]
    for end in End.allCases where endCounts[end.ordinal] > 0 { byEnd[end] = endCounts[end.ordinal] }
    return byEnd
  }

  public private(set) var stuck = 0
  /// Longest lower bound among connections still in FIN_WAIT2 at exit.
  public private(set) var oldestAtExit: UInt64?

  /// `--stack`: connections per call site (stacks with the same frames).
  public private(set) var callSites: [Int16: CallSite] = [:]

  public struct CallSite: Sendable {
    public let stack: CallStack
    public var connections = 0
    /// The longest dwell known (exact, or a lower bound).
    public var longest: UInt64 = 0

    mutating func count(_ dwell: UInt64) {
      connections += 1
      longest = max(longest, dwell)
    }
  }

  /// The summary lists this many call sites, most connections first.
  public static let shownCallSites = 10

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
    if let end = r.end { endCounts[end.ordinal] += 1 }
    if let stack = r.stack {
      callSites[stack.site, default: CallSite(stack: stack)].count(r.dwell.knownNanoseconds)
    }
    switch r.dwell {
    case let .exact(ns):
      percentiles[r.connection.path.ordinal].record(microseconds: ns / 1_000)
    case let .atLeast(ns):
      if r.end == .tracerExit { oldestAtExit = max(oldestAtExit ?? 0, ns) }
    default:
      break
    }
  }

  public func text(losses: LossAccount, tracedFor ns: UInt64) -> [String] {
    let dwellByPath = dwellByPath
    let ends = ends
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
      lines.append(Self.percentileLine(percentiles[path.ordinal]))
    }
    if dwellByPath.count > 1 {
      lines.append("")
      lines.append("all paths: " + Self.percentileLine(allPercentiles))
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
    if !callSites.isEmpty {
      lines.append("")
      lines.append("Call sites that sent the FIN (\(callSites.count) distinct), most connections first:")
      for site in topCallSites {
        let longest = pad(formatDuration(nanoseconds: site.longest), right: 8)
        lines.append(pad(String(site.connections), left: 8) + " conns, longest " + longest + " " + site.stack.compactText)
      }
    }
    lines.append("Losses: " + losses.text)
    return lines
  }

  public func json(losses: LossAccount, tracedFor ns: UInt64) -> String {
    let dwellByPath = dwellByPath
    let ends = ends
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
      p.add("percentiles_us", raw: Self.percentileJSON(percentiles[path.ordinal]))
      paths.add(path.rawValue, raw: p.closed)
    }
    o.add("dwell_by_path", raw: paths.closed)
    let all = allPercentiles
    if all.count > 0 { o.add("dwell_percentiles_us", raw: Self.percentileJSON(all)) }
    var endCounts = JSONObject()
    for end in End.allCases { endCounts.add(end.rawValue, number: UInt64(ends[end, default: 0])) }
    o.add("ends", raw: endCounts.closed)
    o.add("stuck", number: UInt64(stuck))
    o.add("existing", number: UInt64(existing))
    losses.add(to: &o)
    if !callSites.isEmpty {
      let sites = topCallSites.map { site in
        var s = JSONObject()
        s.add("stack_id", number: UInt64(site.stack.id))
        s.add("connections", number: UInt64(site.connections))
        s.add("longest_dwell_ns", number: site.longest)
        s.add("stack", raw: site.stack.json)
        return s.closed
      }
      o.add("call_sites", raw: "[" + sites.joined(separator: ",") + "]")
    }
    return o.closed
  }

  /// Most connections first; ties by id, so output is stable.
  var topCallSites: [CallSite] {
    callSites.values.sorted { ($0.connections, -Int($0.stack.id)) > ($1.connections, -Int($1.stack.id)) }
      .prefix(Self.shownCallSites).map { $0 }
  }

  /// `p50 1.2ms  p90 3.4ms  p99 ...  max ...`
  static func percentileLine(_ p: DwellPercentiles) -> String {
    DwellPercentiles.shown.map { "\($0.label) \(formatDuration(nanoseconds: p.microseconds(at: $0.percentile) * 1_000))" }
      .joined(separator: "  ")
  }

  /// `{"p50":1200,"p90":...,"p99_9":...,"max":...}` in microseconds.
  static func percentileJSON(_ p: DwellPercentiles) -> String {
    var o = JSONObject()
    for shown in DwellPercentiles.shown { o.add(shown.key, number: p.microseconds(at: shown.percentile)) }
    return o.closed
  }
}

extension Path {
  /// Position in `allCases`, without going through the raw value.
  var ordinal: Int {
    switch self {
    case .shutdownWrite: 0
    case .shutdownReadWrite: 1
    case .close: 2
    case .exit: 3
    case .other: 4
    case .unknown: 5
    }
  }
}

extension End {
  /// Position in `allCases`, without going through the raw value.
  var ordinal: Int {
    switch self {
    case .peerFin: 0
    case .reset: 1
    case .timewaitOrphan: 2
    case .timeout: 3
    case .tracerExit: 4
    case .lost: 5
    }
  }
}

/// `finwait top`'s table: one row per process (or pod), built from what is
/// in FIN_WAIT2 now and what ended in the window.
public struct TopTable: Sendable {
  public enum Grouping: String, Sendable, CaseIterable {
    case process, pod
  }

  public enum SortKey: String, Sendable, CaseIterable {
    case now, oldest, p99, ended

    /// The next key (`s` in the view).
    public var next: SortKey {
      let all = Self.allCases
      return all[(all.firstIndex(of: self)! + 1) % all.count]
    }
  }

  public struct Row: Sendable, Equatable {
    public var label: String
    public var attached = 0
    public var orphaned = 0
    /// Longest dwell of those in FIN_WAIT2 now (ns).
    public var oldest: UInt64 = 0
    /// p99 of the exact dwells that ended in the window (ns); nil: none ended.
    public var p99: UInt64?
    /// Ended in the window, per path.
    public var endedByPath: [Path: Int] = [:]
    /// Local peers holding CLOSE_WAIT against its connections now: "pid/comm" or "local".
    public var peers: [String: Int] = [:]

    public var now: Int { attached + orphaned }
    public var ended: Int { endedByPath.values.reduce(0, +) }
  }

  public let grouping: Grouping
  public private(set) var rows: [String: Row] = [:]
  private var windowDwells: [String: DwellPercentiles] = [:]

  public init(grouping: Grouping) {
    self.grouping = grouping
  }

  /// The row a connection belongs to; nil for a pod grouping without a pod.
  public func label(owner: Owner?, workload: Workload?) -> String {
    switch grouping {
    case .process:
      guard let owner else { return "?" }
      return "\(owner.pid) \(owner.comm)"
    case .pod:
      return workload?.podUID ?? workload?.shortContainerID.map { "container \($0)" } ?? "(host)"
    }
  }

  /// A connection in FIN_WAIT2 now.
  public mutating func addOpen(label: String, orphaned: Bool, dwell: UInt64, peer: Peer?, peerName: String?) {
    var row = rows[label] ?? Row(label: label)
    if orphaned { row.orphaned += 1 } else { row.attached += 1 }
    row.oldest = max(row.oldest, dwell)
    if let peer, peer.closeWaitSince != nil, peer.closedAt == nil {
      row.peers[peerName ?? "local", default: 0] += 1
    }
    rows[label] = row
  }

  /// A connection whose FIN_WAIT2 ended in the window.
  public mutating func addEnded(label: String, _ record: Record) {
    guard record.kind == .finWait2 else { return }
    var row = rows[label] ?? Row(label: label)
    row.endedByPath[record.connection.path, default: 0] += 1
    rows[label] = row
    if case let .exact(ns) = record.dwell {
      windowDwells[label, default: DwellPercentiles()].record(microseconds: ns / 1_000)
    }
  }

  /// Forgets what is in FIN_WAIT2 now, before it is listed again.
  public mutating func clearOpen() {
    for key in rows.keys {
      rows[key]?.attached = 0
      rows[key]?.orphaned = 0
      rows[key]?.oldest = 0
      rows[key]?.peers = [:]
    }
  }

  /// Starts a new window: ended counts and dwells start over; rows with
  /// nothing left go.
  public mutating func newWindow() {
    windowDwells.removeAll()
    for key in rows.keys {
      rows[key]?.endedByPath = [:]
      if rows[key]?.now == 0 { rows[key] = nil }
    }
  }

  /// Rows sorted by `key`, largest first, p99s filled in.
  public func sorted(by key: SortKey) -> [Row] {
    var list = Array(rows.values)
    for i in list.indices {
      list[i].p99 = windowDwells[list[i].label].flatMap { $0.count > 0 ? $0.microseconds(at: 99) * 1_000 : nil }
    }
    func value(_ r: Row) -> UInt64 {
      switch key {
      case .now: UInt64(r.now)
      case .oldest: r.oldest
      case .p99: r.p99 ?? 0
      case .ended: UInt64(r.ended)
      }
    }
    return list.sorted { (value($0), $1.label) > (value($1), $0.label) }
  }
}

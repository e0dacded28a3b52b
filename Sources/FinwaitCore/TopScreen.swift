/// `finwait top`'s lines for a terminal of `width` x `height` (or, for plain
/// periodic output, any height): a header, then the rows that fit.
public struct TopScreen: Sendable {
  public struct Header: Sendable {
    public var time: String
    public var windowSeconds: Int
    /// The loop's loss account, shown by the same names as everywhere else.
    public var losses: LossAccount
    public var finTimeoutSeconds: Int?
    public var sortKey: TopTable.SortKey
    public var interactive: Bool

    public init(time: String, windowSeconds: Int, losses: LossAccount = LossAccount(), finTimeoutSeconds: Int?,
                sortKey: TopTable.SortKey, interactive: Bool) {
      self.time = time
      self.windowSeconds = windowSeconds
      self.losses = losses
      self.finTimeoutSeconds = finTimeoutSeconds
      self.sortKey = sortKey
      self.interactive = interactive
    }
  }

  public static func lines(_ rows: [TopTable.Row], header h: Header, grouping: TopTable.Grouping,
                           width: Int, height: Int?) -> [String] {
    let attached = rows.reduce(0) { $0 + $1.attached }
    let orphaned = rows.reduce(0) { $0 + $1.orphaned }
    let ended = rows.reduce(0) { $0 + $1.ended }
    var lines = [
      "finwait top \(h.time)  in FIN_WAIT2: \(attached + orphaned) (attached \(attached), orphaned \(orphaned))  ended in \(h.windowSeconds)s: \(ended)",
      "tcp_fin_timeout \(h.finTimeoutSeconds.map { "\($0)s" } ?? "?")  sort: \(h.sortKey.rawValue)"
        + (h.interactive ? "  [s] sort  [q] quit" : ""),
      "losses: \(h.losses.nonZeroText)",
      "",
    ]
    let labelWidth = grouping == .pod ? 36 : 20
    let title = grouping == .pod ? "POD" : "PID COMM"
    // 80 columns leave 16 for the peers with a process label.
    lines.append(pad(title, labelWidth) + " NOW ORPH  OLDEST     P99 CLOSE SHUT EXIT PEERS IN CLOSE_WAIT")
    for row in rows {
      if let height, lines.count >= height { break }
      var line = pad(String(row.label.prefix(labelWidth)), labelWidth)
      line += right(String(row.now), 4) + right(String(row.orphaned), 5)
      line += right(row.now > 0 ? formatDuration(nanoseconds: row.oldest) : "-", 8)
      line += right(row.p99.map { formatDuration(nanoseconds: $0) } ?? "-", 8)
      let shut = (row.endedByPath[.shutdownWrite] ?? 0) + (row.endedByPath[.shutdownReadWrite] ?? 0)
      line += right(String(row.endedByPath[.close] ?? 0), 6) + right(String(shut), 5) + right(String(row.endedByPath[.exit] ?? 0), 5)
      let peers = row.peers.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        .map { $0.value > 1 ? "\($0.key) x\($0.value)" : $0.key }.joined(separator: ", ")
      line += " " + (peers.isEmpty ? "-" : peers)
      lines.append(String(line.prefix(width)))
    }
    if rows.isEmpty, height.map({ lines.count < $0 }) ?? true {
      lines.append("(nothing in FIN_WAIT2 and nothing ended in the window)")
    }
    return lines.map { String($0.prefix(width)) }
  }

  private static func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
  }

  private static func right(_ s: String, _ width: Int) -> String {
    s.count >= width ? " " + s : String(repeating: " ", count: width - s.count) + s
  }
}

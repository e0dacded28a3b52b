#if canImport(Glibc)
import Glibc
#endif
import CFinwaitSystem
import FinwaitCore

/// `finwait top`: a refreshing view of who holds connections in FIN_WAIT2.
/// Full screen on a terminal (alternate screen, keys `s` and `q`, restored on
/// exit); plain tables every interval when stdout is not a terminal.
public final class TopMode: TracingMode {
  public struct Options: Sendable {
    public var grouping = TopTable.Grouping.process
    public var sortKey = TopTable.SortKey.now
    public var interval: UInt64 = 2_000_000_000
    /// Ended connections and their p99 are counted over this window.
    public var window: UInt64 = 60_000_000_000
    /// Stop after this many refreshes (tests, scripts); nil: until q or Ctrl-C.
    public var count: Int?
    /// Use the terminal when stdout is one (false: plain tables, as in tests).
    public var useTerminal = true
    public init() {}
  }

  public let name = "top"
  let options: Options
  private unowned var loop: TracingLoop!
  @exclusivity(unchecked) private var table: TopTable
  private var terminal = Terminal(enabled: false)
  private var sortKey: TopTable.SortKey
  private var refreshes = 0
  private var nextRefresh: UInt64 = 0
  private var windowEnds: UInt64 = 0
  private var clockText = SecondText(.localTimeOfDay)

  public init(options: Options) {
    self.options = options
    table = TopTable(grouping: options.grouping)
    sortKey = options.sortKey
  }

  public func configure(_ kernel: inout KernelConfig) {}

  public func started(_ loop: TracingLoop) throws(FinwaitError) {
    self.loop = loop
    windowEnds = loop.startedAt + options.window
    nextRefresh = loop.startedAt
    terminal = Terminal(enabled: options.useTerminal)
    if !terminal.isInteractive {
      try loop.environment.stderr.write("finwait top: stdout is not a terminal; printing the table every "
                                        + "\(formatDuration(nanoseconds: options.interval)). Ctrl-C to stop.")
      try loop.environment.stderr.flush()
    }
  }

  /// Ended connections count in the window; those found at start show as now
  /// (through the tracker), not as ended.
  public func record(_ record: Record) {
    guard record.kind == .finWait2 else { return }
    table.addEnded(label: table.label(owner: record.connection.owner, workload: record.workload), record)
  }

  public func tick(now: UInt64) throws(FinwaitError) -> Bool {
    if loop.environment.stopRequested() { return true }
    switch terminal.readKey() {
    case UInt8(ascii: "q"): return true
    case UInt8(ascii: "s"):
      sortKey = sortKey.next
      nextRefresh = now
    default: break
    }
    guard now >= nextRefresh else { return false }
    nextRefresh = now + options.interval
    listOpen(at: now)
    var time = LineBuffer()
    time.append(clockTimeOfMonotonic: now, clock: loop.environment.wallClock, cache: &clockText)
    let header = TopScreen.Header(
      time: time.text, windowSeconds: Int(options.window / 1_000_000_000), losses: loop.losses,
      finTimeoutSeconds: loop.configuration.finTimeoutSeconds, sortKey: sortKey, interactive: terminal.isInteractive)
    let size = terminal.size
    let lines = TopScreen.lines(table.sorted(by: sortKey), header: header, grouping: options.grouping,
                                width: size?.columns ?? 200, height: size?.rows)
    try terminal.draw(lines, to: loop.environment.stdout)
    refreshes += 1
    if now >= windowEnds {
      table.newWindow()
      windowEnds = now + options.window
    }
    if let count = options.count, refreshes >= count { return true }
    return false
  }

  public func finish(now: UInt64, losses: LossAccount) throws(FinwaitError) {
    terminal.restore()
    try loop.environment.stdout.flush()
  }

  /// What is in FIN_WAIT2 now: attached connections (seen entering, or
  /// listed at start) and followed orphans.
  private func listOpen(at now: UInt64) {
    table.clearOpen()
    let workloads = loop.workloads
    let resolve = loop.reconciliation
    func add(_ record: Record, orphaned: Bool, since: UInt64) {
      var record = record
      workloads?.attribute(&record)
      // An attached connection's peer still in CLOSE_WAIT is named from /proc
      // (lookups reused for a second at least); an orphan's only by its close.
      let peer = orphaned ? record.peer
        : record.peer.map { resolve?.resolveOwner(of: $0, for: record.connection.endpoints) ?? $0 }
      table.addOpen(label: table.label(owner: record.connection.owner, workload: record.workload), orphaned: orphaned,
                    dwell: now - min(now, since), peer: record.peer,
                    peerName: peer?.owner.map { "\($0.pid)/\($0.comm)" })
    }
    loop.tracker.forEachAttached { event in
      let record = Record(kind: .finWait2, timestamp: now, connection: event.connection, orphaned: false,
                          dwell: .atLeast(0), end: nil, peer: event.peer)
      add(record, orphaned: false, since: event.enteredAt)
    }
    loop.tracker.forEachListedAtStart { add($0, orphaned: false, since: $0.dwellSince) }
    loop.tracker.orphans?.forEachFollowed { add($0, orphaned: true, since: $1 ?? $0.timestamp) }
  }
}

/// The terminal when stdout is one: alternate screen, hidden cursor, keys
/// without Enter; everything put back by `restore`, also on Ctrl-C.
private struct Terminal {
  let isInteractive: Bool
  private var restored = false

  init(enabled: Bool) {
    isInteractive = enabled && isatty(1) == 1 && isatty(0) == 1
    guard isInteractive else { return }
    _ = fw_terminal_keys(0)
    let out = LineOutput.standardOutput
    try? out.writeRaw("\u{1B}[?1049h\u{1B}[?25l")
    try? out.flush()
  }

  var size: (rows: Int, columns: Int)? {
    var rows: Int32 = 0
    var columns: Int32 = 0
    guard isInteractive, fw_terminal_size(1, &rows, &columns) == 0 else { return nil }
    return (Int(rows), Int(columns))
  }

  func readKey() -> UInt8? {
    guard isInteractive else { return nil }
    var byte: UInt8 = 0
    return read(0, &byte, 1) == 1 ? byte : nil
  }

  func draw(_ lines: [String], to out: any LineSink) throws(FinwaitError) {
    if isInteractive {
      // Home, then each line cleared to its end, then the rest of the screen.
      try out.writeRaw("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    } else {
      for line in lines { try out.write(line) }
      try out.write("")
    }
    try out.flush()
  }

  mutating func restore() {
    guard isInteractive, !restored else { return }
    restored = true
    let out = LineOutput.standardOutput
    try? out.writeRaw("\u{1B}[?25h\u{1B}[?1049l")
    try? out.flush()
    fw_terminal_restore(0)
  }
}

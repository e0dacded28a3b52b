#if canImport(Glibc)
import Glibc
#endif
import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore

/// `finwait top`: a refreshing view of who holds connections in FIN_WAIT2.
/// Full screen on a terminal (alternate screen, keys `s` and `q`, restored on
/// exit); plain tables every interval when stdout is not a terminal.
public struct TopSession {
  public struct Configuration: Sendable {
    public var tracer = Tracer.Options()
    public var grouping = TopTable.Grouping.process
    public var sortKey = TopTable.SortKey.now
    public var interval: UInt64 = 2_000_000_000
    /// Ended connections and their p99 are counted over this window.
    public var window: UInt64 = 60_000_000_000
    /// Stop after this many refreshes (tests, scripts); nil: until q or Ctrl-C.
    public var count: Int?
    public var reconcile = true
    public var verbose = false
    public var finTimeoutSeconds: Int?

    public init() {}
  }

  let configuration: Configuration

  public init(configuration: Configuration) {
    self.configuration = configuration
  }

  public func run() throws(FinwaitError) {
    let config = configuration
    let reconciliation = try startSession(
      btfPath: config.tracer.btfPath, verbose: config.verbose, reconcile: config.reconcile,
      without: "orphans in timewait are not shown")
    var err = LineOutput.standardError
    let state = TopState(config: config, start: monotonicNow(), reconciles: reconciliation != nil)
    let tracer = try Tracer(options: config.tracer) { raw in state.consume(raw) }
    defer { tracer.stop() }
    // Connections already in FIN_WAIT2 count as now, owned as /proc says.
    if let reconciliation {
      let existing = reconciliation.snapshot(filter: config.tracer.recordFilter, at: monotonicNow())
      state.tracker.adopt(existing: existing, listedBy: monotonicNow()) { state.ended($0) }
    }

    var terminal = Terminal()
    defer { terminal.restore() }
    if !terminal.isInteractive {
      try err.write("finwait top: stdout is not a terminal; printing the table every "
                    + "\(formatDuration(nanoseconds: config.interval)). Ctrl-C to stop.")
      try err.flush()
    }
    var out = LineOutput.standardOutput
    var sortKey = config.sortKey
    var refreshes = 0
    var nextRefresh = monotonicNow()
    var windowEnds = state.start + config.window
    let clock = WallClock.now()
    var clockText = SecondText(.localTimeOfDay)
    while fw_stop_requested() == 0 && !out.readerGone {
      try tracer.drain(timeoutMilliseconds: 100)
      let now = monotonicNow()
      reconciliation?.poll(&state.tracker, now: now) { state.ended($0) }
      switch terminal.readKey() {
      case UInt8(ascii: "q"): fw_request_stop()
      case UInt8(ascii: "s"):
        sortKey = sortKey.next
        nextRefresh = now
      default: break
      }
      guard now >= nextRefresh, fw_stop_requested() == 0 else { continue }
      nextRefresh = now + config.interval
      state.listOpen(at: now, resolve: reconciliation)
      var time = LineBuffer()
      time.append(clockTimeOfMonotonic: now, clock: clock, cache: &clockText)
      let counters = tracer.counters
      let header = TopScreen.Header(
        time: time.text, windowSeconds: Int(config.window / 1_000_000_000), drops: counters.ringbufDrops + UInt64(state.intake.undecodable),
        untracked: counters.mapFull, finTimeoutSeconds: config.finTimeoutSeconds, sortKey: sortKey,
        interactive: terminal.isInteractive)
      let size = terminal.size
      let lines = TopScreen.lines(state.table.sorted(by: sortKey), header: header, grouping: config.grouping,
                                  width: size?.columns ?? 200, height: size?.rows)
      try terminal.draw(lines, to: &out)
      refreshes += 1
      if now >= windowEnds {
        state.table.newWindow()
        windowEnds = now + config.window
      }
      if let count = config.count, refreshes >= count { break }
    }
    terminal.restore()
    try out.flush()
  }
}

/// What the ring-buffer callback and the refresh share.
private final class TopState {
  // Unchecked, as in the trace session's state: one thread, callbacks inside drain().
  @exclusivity(unchecked) var tracker: ConnectionTracker
  @exclusivity(unchecked) var table: TopTable
  @exclusivity(unchecked) var intake = RecordIntake()
  let workloads = Workloads()
  let start: UInt64

  init(config: TopSession.Configuration, start: UInt64, reconciles: Bool) {
    self.start = start
    tracker = ConnectionTracker(stuckAfter: nil, tracingSince: start, reconcilesOrphans: reconciles)
    table = TopTable(grouping: config.grouping)
  }

  func consume(_ raw: borrowing fw_event) {
    intake.take(raw, tracker: &tracker, stacks: nil) { ended($0) }
  }

  func ended(_ record: Record) {
    var record = record
    workloads?.attribute(&record)
    table.addEnded(label: table.label(owner: record.connection.owner, workload: record.workload), record)
  }

  /// What is in FIN_WAIT2 now: attached connections (seen entering, or
  /// listed at start) and followed orphans.
  func listOpen(at now: UInt64, resolve: Reconciliation?) {
    table.clearOpen()
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
    tracker.forEachAttached { event in
      let record = Record(kind: .finWait2, timestamp: now, connection: event.connection, orphaned: false,
                          dwell: .atLeast(0), end: nil, peer: event.peer)
      add(record, orphaned: false, since: event.enteredAt)
    }
    tracker.forEachListedAtStart { add($0, orphaned: false, since: $0.dwellSince) }
    tracker.orphans?.forEachFollowed { add($0, orphaned: true, since: $1 ?? $0.timestamp) }
  }
}

/// The terminal when stdout is one: alternate screen, hidden cursor, keys
/// without Enter; everything put back by `restore`, also on Ctrl-C.
private struct Terminal {
  let isInteractive: Bool
  private var restored = false

  init() {
    isInteractive = isatty(1) == 1 && isatty(0) == 1
    guard isInteractive else { return }
    _ = fw_terminal_keys(0)
    var out = LineOutput.standardOutput
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

  func draw(_ lines: [String], to out: inout LineOutput) throws(FinwaitError) {
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
    var out = LineOutput.standardOutput
    try? out.writeRaw("\u{1B}[?25h\u{1B}[?1049l")
    try? out.flush()
    fw_terminal_restore(0)
  }
}

import CFinwaitEvent
import FinwaitCore
import FinwaitTracing

/// finwait's own record intake, driven without a kernel: the shipped
/// `TracingLoop` on a `ScriptedRecordSource`, with a real mode (trace
/// --json, or hist) writing to a sink that only counts. `consume` is the
/// loop's own entry point for a ring-buffer record: no copy of it here.
public final class Consumer {
  public let loop: TracingLoop
  private let clock: ReplayClock
  private let out = CountingLines()

  /// The tracer's defaults: stuck after the fin timeout (60 s), orphans
  /// followed into timewait (sock_diag answers with nothing here).
  public init(tracingSince: UInt64, formatsJSON: Bool, stuckAfter: UInt64 = 60_000_000_000) {
    clock = ReplayClock(now: tracingSince)
    var configuration = TracingLoop.Configuration()
    configuration.stuckAfter = stuckAfter
    let source = ScriptedRecordSource()
    let clock = clock
    let reconciliation = Reconciliation(sockets: NoSockets())
    reconciliation.clock = { clock.now }
    let environment = LoopEnvironment(
      openSource: { _ in source }, reconciliation: reconciliation, processes: ProcfsImages(), workloads: nil,
      clock: { clock.now }, wallClock: WallClock(offset: 1_700_000_000_000_000_000), stopRequested: { false },
      stdout: out, stderr: CountingLines())
    var json = TraceMode.Options()
    json.format = .json
    let mode: any TracingMode = formatsJSON ? TraceMode(options: json) : HistMode(options: HistMode.Options())
    loop = TracingLoop(configuration: configuration, environment: environment, mode: mode)
    // Only setup: the source is scripted, nothing is attached.
    try! loop.start()
  }

  public var tracker: ConnectionTracker { loop.tracker }
  /// The trace mode's summary (empty for hist, which keeps histograms).
  public var summary: Summary { (loop.mode as? TraceMode)?.summary ?? Summary() }
  public var undecodable: Int { loop.losses.undecodable }
  /// Lines the mode wrote, and their bytes: the formatting cannot be optimized away.
  public var emitted: Int { out.lines }
  public var jsonBytes: Int { out.bytes }

  @inline(__always)
  public func consume(_ raw: borrowing fw_event) {
    loop.consume(raw)
  }

  /// What the poll loop does between drains, at the time of the last record.
  public func tick(now: UInt64) {
    clock.now = now
    loop.reportStuck(now: now)
  }
}

final class ReplayClock: @unchecked Sendable {
  var now: UInt64
  init(now: UInt64) { self.now = now }
}

/// Output that is counted, never written.
final class CountingLines: LineSink {
  private(set) var lines = 0
  private(set) var bytes = 0
  var readerGone: Bool { false }
  func write(_ line: String) throws(FinwaitError) { lines += 1; bytes += line.utf8.count }
  func write(_ line: LineBuffer) throws(FinwaitError) { lines += 1; bytes += line.count }
  func writeRaw(_ text: String) throws(FinwaitError) { bytes += text.utf8.count }
  func flush() throws(FinwaitError) {}
}

/// A node with no sockets: orphans are followed, and never found ended.
final class NoSockets: SocketTable {
  var ownNamespace: UInt32 { 1 }
  func namespaces() -> [UInt32] { [1] }
  func finTimeout(of netns: UInt32) -> UInt64? { 60_000_000_000 }
  func forEach(netns: UInt32, states: UInt32, _ body: (DiagSocket) -> Void) throws(FinwaitError) {}
  func lookup(netns: UInt32, endpoints: Endpoints) throws(FinwaitError) -> DiagSocket? { nil }
  func release(_ netns: UInt32) {}
  func owners() -> SocketOwners { SocketOwners() }
}

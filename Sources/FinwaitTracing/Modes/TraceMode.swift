import FinwaitCore

/// `finwait` (trace): a line per connection whose FIN_WAIT2 ends, stuck
/// warnings, and a summary with dwell histograms at the end.
public final class TraceMode: TracingMode {
  public enum Format: Sendable {
    case text, json
  }

  public struct Options: Sendable {
    public var format = Format.text
    /// Lines only for connections whose dwell reached this (the summary counts all).
    public var minDwell: UInt64 = 0
    public init() {}
  }

  public let name = "trace"
  let options: Options
  private unowned var loop: TracingLoop!
  /// Set once by `started`; held here so a record does not reach it through the loop.
  private var out: any LineSink = CapturedLines()
  private var reconciliation: Reconciliation?
  // Unchecked, as the loop's state: one thread, records arrive inside drain().
  @exclusivity(unchecked) private var text = TextFormat(clock: WallClock(offset: 0), ownNetns: 0)
  @exclusivity(unchecked) private var json = JSONFormat(clock: WallClock(offset: 0))
  /// Reused for every line: formatting allocates nothing per record.
  @exclusivity(unchecked) private var line = LineBuffer()
  @exclusivity(unchecked) public private(set) var summary = Summary()
  private var outputError: FinwaitError?

  public init(options: Options) {
    self.options = options
  }

  public func configure(_ kernel: inout KernelConfig) {}

  public func started(_ loop: TracingLoop) throws(FinwaitError) {
    self.loop = loop
    let env = loop.environment
    out = env.stdout
    reconciliation = loop.reconciliation
    text = TextFormat(clock: env.wallClock, ownNetns: loop.reconciliation?.sockets.ownNamespace ?? 0)
    json = JSONFormat(clock: env.wallClock)
    try env.stderr.write(banner(loop.configuration, kernel: loop.kernel))
    try env.stderr.flush()
    if options.format == .text { try out.write(text.header) }
  }

  public func ready(_ loop: TracingLoop) throws(FinwaitError) {
    guard options.format == .json else { return }
    line.clear()
    json.writeReady(mode: name, at: loop.clock(), to: &line)
    try out.write(line)
  }

  public func record(_ record: Record) {
    // A peer still in CLOSE_WAIT is named from /proc: worth it for the rare
    // records where it usually is the culprit (stuck, timed out, still open
    // at exit). Only those are copied to be changed.
    if record.kind == .stuck || record.end == .tracerExit || record.end == .timeout, let peer = record.peer,
      let reconciliation
    {
      var resolved = record
      resolved.peer = reconciliation.resolveOwner(of: peer, for: record.connection.endpoints)
      return write(resolved)
    }
    write(record)
  }

  private func write(_ record: Record) {
    summary.add(record)
    if record.kind == .finWait2, options.minDwell > 0, record.dwell.knownNanoseconds < options.minDwell,
      record.end != .tracerExit
    {
      return
    }
    line.clear()
    switch options.format {
    case .json: json.write(record, to: &line)
    case .text: text.write(record, to: &line)
    }
    do { try out.write(line) } catch { outputError = outputError ?? error }
  }

  public func tick(now: UInt64) throws(FinwaitError) -> Bool {
    if let outputError { throw outputError }
    try out.flush()
    return false
  }

  public func finish(now: UInt64, losses: LossAccount) throws(FinwaitError) {
    if let outputError { throw outputError }
    try out.flush()
    guard !out.readerGone else { return }
    let tracedFor = now - loop.startedAt
    switch options.format {
    case .text:
      for line in summary.text(losses: losses, tracedFor: tracedFor) { try out.write(line) }
    case .json:
      try out.write(summary.json(losses: losses, tracedFor: tracedFor))
    }
    try out.flush()
  }

  func banner(_ c: TracingLoop.Configuration, kernel k: KernelConfig) -> String {
    var what = "Tracing FIN_WAIT2 of "
    what += k.family == 4 ? "IPv4" : k.family == 6 ? "IPv6" : "IPv4 and IPv6"
    what += " TCP connections"
    if let pid = k.pid { what += ", pid \(pid)" }
    if let comm = k.comm { what += ", comm \(comm)" }
    if let port = k.port { what += ", port \(port)" }
    let fin = c.finTimeoutSeconds.map { "\($0)s" } ?? "unknown"
    let stuck = c.stuckAfter.map { "stuck after \(formatDuration(nanoseconds: $0))" } ?? "stuck warnings off"
    return what + " (node tcp_fin_timeout \(fin), \(stuck)). Ctrl-C to stop."
  }
}

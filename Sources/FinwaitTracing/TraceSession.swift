import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore

/// `finwait` (trace mode): attach, stream records until a signal or
/// `--duration`, then detach, settle what is still open and print the summary.
public struct TraceSession {
  public enum Format: Sendable {
    case text, json
  }

  public struct Configuration: Sendable {
    public var tracer = Tracer.Options()
    public var format = Format.text
    /// nil: stuck warnings off.
    public var stuckAfter: UInt64?
    public var minDwell: UInt64 = 0
    public var duration: UInt64?
    public var verbose = false
    /// How often queued records are drained (and the latency bound of output).
    public var drainIntervalMilliseconds: Int32 = 100
    /// The node's tcp_fin_timeout, shown at start.
    public var finTimeoutSeconds: Int?
    /// Follow orphans in timewait to their end and list existing FIN_WAIT2
    /// connections at start (sock_diag).
    public var reconcile = true

    /// The filters, for records that do not come through the BPF program.
    public var filter: RecordFilter { tracer.recordFilter }

    public init() {}
  }

  let configuration: Configuration

  public init(configuration: Configuration) {
    self.configuration = configuration
  }

  /// Runs until stopped. Throws only before tracing began or on an output error.
  public func run() throws(FinwaitError) {
    let config = configuration
    let reconciliation = try startSession(
      btfPath: config.tracer.btfPath, verbose: config.verbose, reconcile: config.reconcile,
      without: "orphans in timewait are reported without their end")
    var err = LineOutput.standardError
    let state = SessionState(
      config: config, clock: .now(), start: monotonicNow(), reconciliation: reconciliation)
    let tracer = try Tracer(options: config.tracer) { raw in state.consume(raw) }
    defer { tracer.stop() }
    if config.tracer.captureStacks { state.stacks = CallStacks(tracer: tracer) }

    try err.write(startBanner(config))
    try err.flush()
    if config.format == .text { try state.out.write(state.text.header) }
    // Attached first, then listed: a connection ending in between is seen by the tracepoint.
    if let reconciliation {
      let existing = reconciliation.snapshot(filter: config.filter, at: monotonicNow())
      let listedBy = monotonicNow()
      for record in existing { state.emit(record) }
      state.tracker.adopt(existing: existing, listedBy: listedBy) { state.emit($0) }
    }
    try state.flush()

    let audit = reconciliation.map { MapAudit(diag: $0.diag) }
    let deadline = config.duration.map { state.start + $0 }
    while fw_stop_requested() == 0 && !state.out.readerGone {
      try tracer.drain(timeoutMilliseconds: config.drainIntervalMilliseconds)
      let now = monotonicNow()
      state.tracker.reportStuck(now: now) { state.emit($0) }
      reconciliation?.poll(&state.tracker, now: now) { state.emit($0) }
      if let audit, let result = audit.check(tracer, now: now, meanwhile: { _ = try? tracer.drain(timeoutMilliseconds: 0) }) {
        audit.apply(result, tracer, tracker: &state.tracker) { state.emit($0) }
      }
      try state.flush()
      if let deadline, now >= deadline { break }
    }

    tracer.detach()
    try tracer.drain(timeoutMilliseconds: 0)
    reconciliation?.poll(&state.tracker, now: monotonicNow(), force: true) { state.emit($0) }
    if let audit, let result = audit.check(tracer, now: monotonicNow(), final: true, meanwhile: {}) {
      audit.apply(result, tracer, tracker: &state.tracker) { state.emit($0) }
    }
    let now = monotonicNow()
    let inFlight = tracer.inFlight().compactMap { try? Event(decoding: $0) }
    state.tracker.finish(at: now, inFlight: inFlight) { state.emit($0) }
    try state.flush()
    guard !state.out.readerGone else { return }

    let losses = Summary.Losses(
      kernel: tracer.counters, tracker: state.tracker.counters, undecodable: state.intake.undecodable)
    switch config.format {
    case .text:
      for line in state.summary.text(losses: losses, tracedFor: now - state.start) { try state.out.write(line) }
    case .json:
      try state.out.write(state.summary.json(losses: losses, tracedFor: now - state.start))
    }
    try state.out.flush()
  }

  func startBanner(_ c: Configuration) -> String {
    var what = "Tracing FIN_WAIT2 of "
    what += c.tracer.family == 4 ? "IPv4" : c.tracer.family == 6 ? "IPv6" : "IPv4 and IPv6"
    what += " TCP connections"
    if c.tracer.pid != 0 { what += ", pid \(c.tracer.pid)" }
    if let comm = c.tracer.comm { what += ", comm \(comm)" }
    if c.tracer.port != 0 { what += ", port \(c.tracer.port)" }
    let fin = c.finTimeoutSeconds.map { "\($0)s" } ?? "unknown"
    let stuck = c.stuckAfter.map { "stuck after \(formatDuration(nanoseconds: $0))" } ?? "stuck warnings off"
    return what + " (node tcp_fin_timeout \(fin), \(stuck)). Ctrl-C to stop."
  }
}

/// What the poll loop mutates, reached from the ring-buffer callback.
private final class SessionState {
  let config: TraceSession.Configuration
  let start: UInt64
  var text: TextFormat
  var json: JSONFormat
  /// Reused for every line: formatting allocates nothing per record.
  var line = LineBuffer()
  // Unchecked: each record otherwise pays a runtime exclusivity check per
  // access (5% of the consumer's instructions, callgrind). Safe: one thread
  // touches this state, and the ring-buffer callback runs inside drain(),
  // never during another access to these properties.
  @exclusivity(unchecked) var tracker: ConnectionTracker
  @exclusivity(unchecked) var summary = Summary()
  var out = LineOutput.standardOutput
  @exclusivity(unchecked) var intake = RecordIntake()
  var outputError: FinwaitError?

  let reconciliation: Reconciliation?
  /// nil without cgroup v2: records then carry no container or pod.
  let workloads = Workloads()
  /// `--stack`; set before the first drain.
  var stacks: CallStacks?

  init(config: TraceSession.Configuration, clock: WallClock, start: UInt64, reconciliation: Reconciliation?) {
    self.config = config
    self.start = start
    self.reconciliation = reconciliation
    text = TextFormat(clock: clock, ownNetns: reconciliation?.namespaces.own ?? 0)
    json = JSONFormat(clock: clock)
    tracker = ConnectionTracker(
      stuckAfter: config.stuckAfter, tracingSince: start, reconcilesOrphans: reconciliation != nil)
  }

  func consume(_ raw: borrowing fw_event) {
    intake.take(raw, tracker: &tracker, stacks: stacks) { emit($0) }
  }

  func emit(_ record: Record) {
    var record = record
    stacks?.attribute(&record)
    // A peer still in CLOSE_WAIT is named from /proc: worth it for the rare
    // records where it usually is the culprit (stuck, timed out, still open at exit).
    if record.kind == .stuck || record.end == .tracerExit || record.end == .timeout, let peer = record.peer,
      let reconciliation
    {
      record.peer = reconciliation.resolveOwner(of: peer, for: record.connection.endpoints)
    }
    workloads?.attribute(&record)
    summary.add(record)
    if record.kind == .finWait2, config.minDwell > 0, record.dwell.knownNanoseconds < config.minDwell,
      record.end != .tracerExit
    {
      return
    }
    line.clear()
    switch config.format {
    case .json: json.write(record, to: &line)
    case .text: text.write(record, to: &line)
    }
    do { try out.write(line) } catch { outputError = outputError ?? error }
  }

  func flush() throws(FinwaitError) {
    if let outputError { throw outputError }
    try out.flush()
  }
}

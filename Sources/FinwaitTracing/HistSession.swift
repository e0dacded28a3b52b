import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore

/// `finwait hist`: FIN_WAIT2 dwell histograms every interval, bcc style.
/// Connections that end as full sockets are counted in the kernel (no
/// ring-buffer record); orphans handed to timewait come to user space, are
/// followed to their real end and counted then, in the interval they end.
public struct HistSession {
  public struct Configuration: Sendable {
    public var tracer = Tracer.Options()
    public var by = Breakdown.path
    /// Slot unit: 1,000 ns (usecs) or 1,000,000 ns (msecs, `-m`).
    public var unitNanoseconds: UInt64 = 1_000
    public var interval: UInt64 = 1_000_000_000
    /// Intervals to print; nil: until Ctrl-C.
    public var count: Int?
    /// Print the time above each interval (`-T`).
    public var timestamps = false
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
      without: "orphans in timewait are not counted")
    var err = LineOutput.standardError
    let state = HistState(config: config, start: monotonicNow(), reconciles: reconciliation != nil)
    var options = config.tracer
    options.histogram = (config.by, config.unitNanoseconds)
    options.captureStacks = options.captureStacks || config.by == .stack
    let tracer = try Tracer(options: options) { raw in state.consume(raw) }
    defer { tracer.stop() }
    if options.captureStacks { state.stacks = CallStacks(tracer: tracer) }

    let unit = config.unitNanoseconds >= 1_000_000 ? "msecs" : "usecs"
    let fin = config.finTimeoutSeconds.map { "\($0)s" } ?? "unknown"
    try err.write("Tracing FIN_WAIT2 dwell (\(unit)) by \(config.by.rawValue), every "
                  + "\(formatDuration(nanoseconds: config.interval)) (node tcp_fin_timeout \(fin)). Ctrl-C to stop.")
    try err.flush()

    var out = LineOutput.standardOutput
    var printed = 0
    var next = state.start + config.interval
    var clockText = SecondText(.localTimeOfDay)
    let clock = WallClock.now()
    while fw_stop_requested() == 0 && !out.readerGone {
      try tracer.drain(timeoutMilliseconds: 100)
      let now = monotonicNow()
      reconciliation?.poll(&state.tracker, now: now) { state.emit($0) }
      guard now >= next else { continue }
      next += config.interval
      try printInterval(tracer, state: state, at: now, clock: clock, clockText: &clockText, to: &out)
      printed += 1
      if let count = config.count, printed >= count { break }
    }
    tracer.detach()
    try tracer.drain(timeoutMilliseconds: 0)
    // Ctrl-C between intervals: what was counted so far is printed, not lost.
    if fw_stop_requested() != 0 && !out.readerGone {
      try printInterval(tracer, state: state, at: monotonicNow(), clock: clock, clockText: &clockText, to: &out)
    }
    try out.flush()
    let kernel = tracer.counters
    let losses = [("ring buffer drops", kernel.ringbufDrops), ("untracked (socket map full)", kernel.mapFull),
                  ("dwells not counted (histogram map full)", kernel.histFull),
                  ("call stacks not kept (stack map bucket taken)", kernel.stackLost),
                  ("state changes the kernel skipped", kernel.recursionMisses),
                  ("undecodable records", UInt64(state.intake.undecodable))].filter { $0.1 > 0 }
    if !losses.isEmpty {
      try err.write("finwait: lost: " + losses.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
      try err.flush()
    }
  }

  private func printInterval(
    _ tracer: Tracer, state: HistState, at now: UInt64, clock: WallClock, clockText: inout SecondText,
    to out: inout LineOutput
  ) throws(FinwaitError) {
    tracer.takeHistograms(into: &state.intervals)
    if let stacks = state.stacks {
      state.intervals.mergeKeys { key in
        var key = key
        if let id = key.stackID, id >= 0 { key.stackID = stacks.stack(id, pid: nil).site }
        return key
      }
    }
    var lines: [String] = []
    if configuration.timestamps {
      var line = LineBuffer()
      line.append(clockTimeOfMonotonic: now, clock: clock, cache: &clockText)
      lines.append(line.text)
    }
    let blocks = state.intervals.render(
      annotate: { key in key.cgroupID.flatMap { state.workloads?.workload(ofCgroup: $0)?.summary } },
      details: { key in
        guard let id = key.stackID, id >= 0, let stacks = state.stacks else { return [] }
        return stacks.stack(id, pid: nil).lines
      })
    lines += blocks.isEmpty ? ["", "(no FIN_WAIT2 ended in this interval)"] : blocks
    for line in lines { try out.write(line) }
    try out.flush()
    state.intervals.reset()
  }
}

/// What the ring-buffer callback and the loop share.
private final class HistState {
  // Unchecked, as in the trace session's state: one thread, callbacks inside drain().
  @exclusivity(unchecked) var tracker: ConnectionTracker
  @exclusivity(unchecked) var intervals: IntervalHistograms
  @exclusivity(unchecked) var intake = RecordIntake()
  let start: UInt64
  /// `--by cgroup` names each cgroup's container and pod.
  let workloads = Workloads()
  /// `--by stack`; set before the first drain.
  var stacks: CallStacks?

  init(config: HistSession.Configuration, start: UInt64, reconciles: Bool) {
    self.start = start
    tracker = ConnectionTracker(stuckAfter: nil, tracingSince: start, reconcilesOrphans: reconciles)
    intervals = IntervalHistograms(by: config.by, unitNanoseconds: config.unitNanoseconds)
  }

  func consume(_ raw: borrowing fw_event) {
    intake.take(raw, tracker: &tracker, stacks: stacks) { emit($0) }
  }

  func emit(_ record: Record) {
    intervals.add(record)
  }
}

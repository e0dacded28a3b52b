import FinwaitCore

/// `finwait hist`: FIN_WAIT2 dwell histograms every interval, bcc style.
/// Connections that end as full sockets are counted in the kernel (no
/// ring-buffer record); orphans handed to timewait come to user space, are
/// followed to their real end and counted then, in the interval they end.
public final class HistMode: TracingMode {
  public struct Options: Sendable {
    public var by = Breakdown.path
    /// Slot unit: 1,000 ns (usecs) or 1,000,000 ns (msecs, `-m`).
    public var unitNanoseconds: UInt64 = 1_000
    public var interval: UInt64 = 1_000_000_000
    /// Intervals to print; nil: until Ctrl-C.
    public var count: Int?
    /// Print the time above each interval (`-T`).
    public var timestamps = false
    public init() {}
  }

  public let name = "hist"
  let options: Options
  private unowned var loop: TracingLoop!
  @exclusivity(unchecked) private var intervals: IntervalHistograms
  private var printed = 0
  private var next: UInt64 = 0
  private var clockText = SecondText(.localTimeOfDay)

  public init(options: Options) {
    self.options = options
    intervals = IntervalHistograms(by: options.by, unitNanoseconds: options.unitNanoseconds)
  }

  public func configure(_ kernel: inout KernelConfig) {
    kernel.histogram = (options.by, options.unitNanoseconds)
    kernel.captureStacks = kernel.captureStacks || options.by == .stack
  }

  public func started(_ loop: TracingLoop) throws(FinwaitError) {
    self.loop = loop
    next = loop.startedAt + options.interval
    let unit = options.unitNanoseconds >= 1_000_000 ? "msecs" : "usecs"
    let fin = loop.configuration.finTimeoutSeconds.map { "\($0)s" } ?? "unknown"
    try loop.environment.stderr.write(
      "Tracing FIN_WAIT2 dwell (\(unit)) by \(options.by.rawValue), every "
        + "\(formatDuration(nanoseconds: options.interval)) (node tcp_fin_timeout \(fin)). Ctrl-C to stop.")
    try loop.environment.stderr.flush()
  }

  /// Only ended connections with an exact dwell are counted (see IntervalHistograms.add).
  public func record(_ record: Record) {
    intervals.add(record)
  }

  public func tick(now: UInt64) throws(FinwaitError) -> Bool {
    guard now >= next else { return false }
    next += options.interval
    try printInterval(at: now)
    printed += 1
    if let count = options.count, printed >= count { return true }
    return false
  }

  public func finish(now: UInt64, losses: LossAccount) throws(FinwaitError) {
    let env = loop.environment
    // Ctrl-C between intervals: what was counted so far is printed, not lost.
    if env.stopRequested() && !env.stdout.readerGone { try printInterval(at: now) }
    try env.stdout.flush()
    try env.stderr.write("finwait: Losses: " + losses.text)
    try env.stderr.flush()
  }

  private func printInterval(at now: UInt64) throws(FinwaitError) {
    let out = loop.environment.stdout
    loop.source.takeHistograms(into: &intervals)
    if let stacks = loop.stacks {
      intervals.mergeKeys { key in
        var key = key
        if let id = key.stackID, id >= 0 { key.stackID = stacks.stack(id, pid: nil).site }
        return key
      }
    }
    var lines: [String] = []
    if options.timestamps {
      var line = LineBuffer()
      line.append(clockTimeOfMonotonic: now, clock: loop.environment.wallClock, cache: &clockText)
      lines.append(line.text)
    }
    let workloads = loop.workloads
    let stacks = loop.stacks
    let blocks = intervals.render(
      annotate: { key in key.cgroupID.flatMap { workloads?.workload(ofCgroup: $0)?.summary } },
      details: { key in
        guard let id = key.stackID, id >= 0, let stacks else { return [] }
        return stacks.stack(id, pid: nil).lines
      })
    lines += blocks.isEmpty ? ["", "(no FIN_WAIT2 ended in this interval)"] : blocks
    for line in lines { try out.write(line) }
    try out.flush()
    intervals.reset()
  }
}

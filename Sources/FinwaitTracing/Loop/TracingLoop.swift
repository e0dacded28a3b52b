import CFinwaitEvent
import FinwaitCore

/// A mode of the tracing loop: what it does with what the loop settles.
/// The loop owns everything else (start, adoption of what exists, drain,
/// reconciliation, the map audit, stuck checks, detach, the loss account).
public protocol TracingMode: AnyObject {
  /// `trace`, `hist`, `top`: named in the ready record.
  var name: String { get }
  /// What the kernel must do for this mode (hist counts dwells in the kernel).
  func configure(_ kernel: inout KernelConfig)
  /// Attached, before connections that exist are listed: banners and headers.
  func started(_ loop: TracingLoop) throws(FinwaitError)
  /// Attached and existing connections adopted: about to drain.
  func ready(_ loop: TracingLoop) throws(FinwaitError)
  /// A record the loop settled (an ended connection, a stuck warning, one
  /// found at start), with its call site and workload attributed.
  func record(_ record: Record)
  /// After each drain and settlement; true ends the loop.
  func tick(now: UInt64) throws(FinwaitError) -> Bool
  /// After detach, when everything still open was settled.
  func finish(now: UInt64, losses: LossAccount) throws(FinwaitError)
}

extension TracingMode {
  public func ready(_ loop: TracingLoop) throws(FinwaitError) {}
}

/// The one tracing loop under every mode. Data flows one way: record source
/// -> intake (decode, track) -> settlement (stuck checks, orphans followed
/// through sock_diag, audits of the kernel map) -> attribution (call site,
/// workload) -> the mode -> its outputs.
public final class TracingLoop {
  public struct Configuration: Sendable {
    public var kernel = KernelConfig()
    /// Kernel BTF to use instead of /sys/kernel/btf/vmlinux.
    public var btfPath: String?
    /// `--attach`: tp_btf, the classic tracepoint, or whichever the probes allow.
    public var attach = AttachMode.auto
    /// nil: stuck warnings off.
    public var stuckAfter: UInt64?
    /// Stop after this long; nil: until a signal or the mode stops.
    public var duration: UInt64?
    /// How often queued records are drained (and the latency bound of output).
    public var drainIntervalMilliseconds: Int32 = 100
    /// The node's tcp_fin_timeout, for banners.
    public var finTimeoutSeconds: Int?

    public init() {}
  }

  public let configuration: Configuration
  public let environment: LoopEnvironment
  public let mode: any TracingMode

  /// Set by `run` before the first record.
  public private(set) var source: (any RecordSource)!
  public private(set) var startedAt: UInt64 = 0
  /// The kernel configuration as the mode completed it.
  public private(set) var kernel = KernelConfig()
  // Unchecked: each record otherwise pays a runtime exclusivity check per
  // access (5% of the consumer's instructions, callgrind). Safe: one thread
  // touches this state, and the record callback runs inside drain(), never
  // during another access to these properties.
  @exclusivity(unchecked) public private(set) var tracker = ConnectionTracker(stuckAfter: nil, tracingSince: 0)
  @exclusivity(unchecked) private var intake = RecordIntake()
  /// `--stack`: call sites named; nil without.
  public private(set) var stacks: CallStacks?
  public var reconciliation: Reconciliation? { environment.reconciliation }
  public let workloads: Workloads?
  public var clock: () -> UInt64 { environment.clock }

  public init(configuration: Configuration, environment: LoopEnvironment, mode: any TracingMode) {
    self.configuration = configuration
    self.environment = environment
    self.mode = mode
    workloads = environment.workloads
  }

  /// Every loss and repair so far, the same for every mode.
  public var losses: LossAccount {
    LossAccount(kernel: source?.counters ?? KernelCounters(), tracker: tracker.counters, undecodable: intake.undecodable)
  }

  /// Runs until a signal, `duration`, the mode, or a reader gone. Throws
  /// only before tracing began or on an output error.
  public func run() throws(FinwaitError) {
    try start()
    defer { environment.closeSource(source) }
    while try cycle() {}
    try finish()
  }

  private var audit: MapAudit?
  private var deadline: UInt64?

  /// Opens the source, lists what exists and says ready.
  public func start() throws(FinwaitError) {
    let env = environment
    kernel = configuration.kernel
    mode.configure(&kernel)
    let source = try env.openSource(kernel)
    self.source = source
    startedAt = env.clock()
    tracker = ConnectionTracker(
      stuckAfter: configuration.stuckAfter, tracingSince: startedAt, reconcilesOrphans: env.reconciliation != nil)
    if kernel.captureStacks { stacks = CallStacks(tracer: source, processes: source.processImages(over: env.processes)) }
    try mode.started(self)

    // Attached first, then listed: a connection ending in between is seen by the tracepoint.
    if let reconciliation = env.reconciliation {
      let existing = reconciliation.snapshot(filter: kernel, at: env.clock())
      let listedBy = env.clock()
      for record in existing { deliver(record) }
      tracker.adopt(existing: existing, listedBy: listedBy) { deliver($0) }
    }
    try mode.ready(self)
    try env.stdout.flush()
    env.readiness.signal()
    audit = env.reconciliation.map { MapAudit(sockets: $0.sockets) }
    audit?.clock = env.clock
    deadline = configuration.duration.map { startedAt + $0 }
  }

  /// One drain and what follows it; false when the loop should end.
  public func cycle() throws(FinwaitError) -> Bool {
    let env = environment
    guard !env.stopRequested(), !env.stdout.readerGone else { return false }
    try source.drain(timeoutMilliseconds: configuration.drainIntervalMilliseconds) { consume($0) }
    let now = env.clock()
    reportStuck(now: now)
    try followOrphans(now: now)
    if let audit, let result = audit.check(source, now: now, meanwhile: { _ = try? drainQueued() }) {
      audit.apply(result, source, tracker: &tracker, followsAttached: kernel.histogram == nil) { deliver($0) }
    }
    if try mode.tick(now: now) { return false }
    if let deadline, now >= deadline { return false }
    return true
  }

  /// Detaches, settles everything still open, and lets the mode finish.
  public func finish() throws(FinwaitError) {
    let env = environment
    source.detach()
    try drainQueued()
    try followOrphans(now: env.clock(), force: true)
    if let audit, let result = audit.check(source, now: env.clock(), final: true, meanwhile: {}) {
      audit.apply(result, source, tracker: &tracker, followsAttached: kernel.histogram == nil) { deliver($0) }
    }
    let now = env.clock()
    let inFlight = source.inFlight().compactMap { try? Event(decoding: $0) }
    tracker.finish(at: now, inFlight: inFlight) { deliver($0) }
    try mode.finish(now: now, losses: losses)
  }

  /// Attached connections past the stuck threshold, reported once each.
  public func reportStuck(now: UInt64) {
    tracker.reportStuck(now: now) { deliver($0) }
  }

  /// Everything queued now, without waiting.
  private func drainQueued() throws(FinwaitError) {
    try source.drain(timeoutMilliseconds: 0) { consume($0) }
  }

  /// Orphans in timewait followed to their end: the sockets are dumped, then
  /// the ring buffer drained (see `Reconciliation.dumpFollowed`), then both
  /// are settled.
  private func followOrphans(now: UInt64, force: Bool = false) throws(FinwaitError) {
    guard let reconciliation = environment.reconciliation,
      let polled = reconciliation.dumpFollowed(tracker.orphans, now: now, force: force)
    else { return }
    try drainQueued()
    reconciliation.observe(polled, into: &tracker) { deliver($0) }
  }

  /// One raw record through the intake (decode, track) and on to the mode:
  /// what the ring-buffer callback does for each record. Not inlined, so
  /// profilers and bench/replay see the one entry point.
  @inline(never)
  public func consume(_ raw: borrowing fw_event) {
    intake.take(raw, tracker: &tracker, stacks: stacks) { deliver($0) }
  }

  private func deliver(_ record: Record) {
    // Most records need no attribution: no copy of the record for them.
    guard stacks != nil || workloads != nil else { return mode.record(record) }
    var record = record
    stacks?.attribute(&record)
    workloads?.attribute(&record)
    mode.record(record)
  }
}

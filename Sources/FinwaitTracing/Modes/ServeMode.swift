import CFinwaitEvent
import FinwaitCore
import Logging
import Prometheus
import Synchronization

/// The registry behind `/metrics`, and whether the loop is attached: what
/// the HTTP thread reads while the tracing loop writes.
public final class ServeMetrics: MetricsEndpoint, @unchecked Sendable {
  public let registry = PrometheusCollectorRegistry()
  private let ready = Atomic<Bool>(false)

  public init() {}

  public var isReady: Bool {
    get { ready.load(ordering: .acquiring) }
    set { ready.store(newValue, ordering: .releasing) }
  }

  public func exposition(openMetrics: Bool) -> [UInt8] {
    let text = registry.emitToBuffer()
    return openMetrics ? Exposition.openMetrics(fromText: text) : text
  }
}

/// `finwait serve`: the tracing loop as a Prometheus exporter. Full sockets'
/// dwells are counted in the kernel by path, end and owner (as `finwait
/// hist` counts them); orphans are followed to their real end and counted
/// here. Every `refresh` interval the kernel's histograms are taken, and the
/// sockets in FIN_WAIT2 now are counted from the kernel map and the tracker:
/// gauges, stuck sockets (one log line each) and the loss counters.
public final class ServeMode: TracingMode {
  public struct Options: Sendable {
    /// Attached sockets in FIN_WAIT2 longer than this are stuck; nil: never.
    public var stuckAfter: UInt64? = 60_000_000_000
    /// Owners with their own labels; the rest are `other`.
    public var maxOwners = 100
    public var refreshInterval: UInt64 = 1_000_000_000
    /// The kubelet's pod log directories.
    public var podLogs = PodNames.defaultDirectory
    /// Give up every capability not needed once attached (not in tests).
    public var dropCapabilities = false
    /// Where /metrics is served, for the log line at start.
    public var listen = ListenAddress.default
    public init() {}
  }

  public let name = "serve"
  let options: Options
  public let metrics: ServeMetrics
  private unowned var loop: TracingLoop!
  private var registry: PrometheusCollectorRegistry { metrics.registry }
  private var logger: Logger
  private let pods: PodNames
  private var nextRefresh: UInt64 = 0

  private struct PathEnd: Hashable {
    var path: Path
    var end: End
  }
  private struct PathOwner: Hashable {
    var path: Path
    var owner: OwnerKey
  }
  private var durations: [PathEnd: ValueHistogram] = [:]
  private var totals: [OwnerLabels: [Path: Counter]] = [:]
  /// Owners resolved to labels since the last refresh (pods get names late).
  private var labelCache: [OwnerKey: OwnerLabels] = [:]
  private var totalCache: [PathOwner: Counter] = [:]
  private var budget: OwnerBudget
  private var socketGauges: [Census.Key: Gauge] = [:]
  private var stuckGauges: [OwnerLabels: Gauge] = [:]
  private var oldest: Gauge!
  private var closeWaitPeers: Gauge!
  private var lossCounters: [(LossAccount.Counter, Counter)] = []
  private var lossesExported: [LossAccount.Counter: UInt64] = [:]
  /// Stuck sockets already logged (digest of tuple and namespace, start), and
  /// those seen stuck in the last refresh: a socket is logged once.
  private var logged = Set<StuckIdentity>()

  private struct StuckIdentity: Hashable {
    var digest: UInt64
    var since: UInt64
  }

  public init(options: Options, metrics: ServeMetrics, logger: Logger, clock: @escaping @Sendable () -> UInt64) {
    self.options = options
    self.metrics = metrics
    self.logger = logger
    budget = OwnerBudget(limit: max(1, options.maxOwners))
    pods = PodNames(directory: options.podLogs, clock: clock)
  }

  /// serve's log: logfmt lines on `sink`, warnings at start included.
  public static func logger(to sink: any LineSink, clock: @escaping @Sendable () -> UInt64, wallClock: WallClock) -> Logger {
    let handler = LogfmtLogHandler(sink: sink, clock: clock, wallClock: wallClock)
    return Logger(label: "finwait") { _ in handler }
  }

  public func configure(_ kernel: inout KernelConfig) {
    kernel.countsForExport = true
  }

  public func started(_ loop: TracingLoop) throws(FinwaitError) {
    self.loop = loop
    registry.makeGauge(
      name: Metric.buildInfo.name,
      labels: [(MetricLabel.version, Build.version), (MetricLabel.kernel, Preflight.kernelRelease())]
        + (loop.source.attachProgram.map { [(MetricLabel.attach, $0.rawValue)] } ?? []),
      help: Metric.buildInfo.help
    ).set(1.0)
    oldest = registry.makeGauge(name: Metric.oldest.name, help: Metric.oldest.help)
    closeWaitPeers = registry.makeGauge(name: Metric.closeWaitPeers.name, help: Metric.closeWaitPeers.help)
    // A counter the kernel does not keep is no series at all: a 0 would say none happened.
    let counted = LossAccount(kernel: loop.source.counters)
    for counter in LossAccount.Counter.allCases where counted.isCounted(counter) {
      let metric = Metric.loss(counter)
      lossCounters.append((counter, registry.makeCounter(name: metric.name, help: metric.help)))
    }
    // Every state is exported from the start: an empty node reads 0, not "no data".
    for state in HeldState.allCases { _ = socketGauge(Census.Key(state: state, owner: OwnerLabels())) }
  }

  /// Attached, and what existed adopted: counted, then ready.
  public func ready(_ loop: TracingLoop) throws(FinwaitError) {
    refresh(now: loop.clock())
    if options.dropCapabilities, let errno = Capability.dropAllButKeptAfterAttach() {
      logger.warning("could not drop capabilities", metadata: ["error": "\(errno)"])
    }
    metrics.isReady = true
    logger.info(
      "attached; serving /metrics",
      metadata: ["listen": "\(options.listen)", "version": "\(Build.version)", "stuck_after_seconds": "\(options.stuckAfter.map { $0 / 1_000_000_000 }.map(String.init) ?? "off")"])
  }

  /// Ends counted in user space: orphans followed to their end, sockets that
  /// existed at start, ends lost.
  public func record(_ record: Record) {
    guard record.kind == .finWait2 else { return }
    let path = record.connection.path
    total(path: path, owner: OwnerKey(record.connection.owner), workload: record.workload).increment()
    if case let .exact(ns) = record.dwell, let end = record.end {
      duration(PathEnd(path: path, end: end)).record(Double(ns) / 1e9)
    }
  }

  public func tick(now: UInt64) throws(FinwaitError) -> Bool {
    if now >= nextRefresh { refresh(now: now) }
    return false
  }

  public func finish(now: UInt64, losses: LossAccount) throws(FinwaitError) {
    metrics.isReady = false
    exportLosses(losses)
    var metadata: Logger.Metadata = [:]
    for counter in LossAccount.Counter.allCases {
      metadata[counter.rawValue] = losses.isCounted(counter) ? "\(losses[counter])" : "n/a"
    }
    logger.info("detached", metadata: metadata)
  }

  // MARK: - Refresh

  /// At most 1/budgetDivisor of a core: with hundreds of thousands of
  /// sockets in FIN_WAIT2, walking the map takes longer than a second allows.
  let budgetDivisor: UInt64 = 20

  private func refresh(now: UInt64) {
    labelCache.removeAll(keepingCapacity: true)
    totalCache.removeAll(keepingCapacity: true)
    takeKernelHistograms()
    count(now: now)
    exportLosses(loop.losses)
    let took = loop.clock() - min(loop.clock(), now)
    nextRefresh = now + max(options.refreshInterval, took * budgetDivisor)
  }

  private func takeKernelHistograms() {
    loop.source.takeHistograms { key, slots, sums in
      let path = Path(raw: key.path)
      var taken: UInt64 = 0
      if let end = End(raw: key.end) {
        let histogram = duration(PathEnd(path: path, end: end))
        DwellBuckets.observations(slots: slots, sums: sums) { seconds, count in
          for _ in 0..<count { histogram.record(seconds) }
          taken += count
        }
      } else {
        taken = slots.reduce(0, +)
      }
      let workload = loop.workloads?.workload(ofCgroup: key.cgroup_id)
      total(path: path, owner: OwnerKey(kernel: key), workload: workload).increment(by: Int64(taken))
    }
  }

  /// A socket in FIN_WAIT2 now, and the connection the stuck line names.
  private struct Holding {
    var held: HeldSocket
    var connection: Connection
  }

  /// The sockets in FIN_WAIT2 now: full sockets from the kernel map,
  /// orphans in timewait and sockets found at start from the tracker.
  private func count(now: UInt64) {
    var holdings: [Holding] = []
    func hold(_ connection: Connection, peer: Peer?, state: HeldState, since: UInt64) {
      let workload = connection.owner.flatMap { loop.workloads?.workload(of: $0) }
      let peerWaits = peer.map { $0.closeWaitSince != nil && $0.closedAt == nil } ?? false
      holdings.append(Holding(
        held: HeldSocket(state: state, since: since, owner: labels(OwnerKey(connection.owner), workload: workload),
                         peerInCloseWait: peerWaits),
        connection: connection))
    }
    for raw in loop.source.inFlight() {
      guard let event = try? Event(decoding: raw), let since = event.finWait2At else { continue }
      let orphaned = raw.flags & UInt8(FW_FLAG_ORPHAN_AT_ENTRY | FW_FLAG_CLOSED) != 0
      hold(event.connection, peer: event.peer, state: orphaned ? .orphaned : .attached, since: since)
    }
    loop.tracker.orphans?.forEachFollowed { record, _ in
      hold(record.connection, peer: record.peer, state: .orphaned, since: record.dwellSince)
    }
    loop.tracker.forEachListedAtStart {
      hold($0.connection, peer: $0.peer, state: .attached, since: $0.dwellSince)
    }

    let census = Census(
      holdings.lazy.map(\.held), now: now, stuckAfter: options.stuckAfter, maxOwners: options.maxOwners)
    export(census)
    logStuck(holdings, now: now)
  }

  private func export(_ census: Census) {
    for (key, gauge) in socketGauges where census.sockets[key] == nil {
      // Series of owners that hold nothing now go; the unlabelled ones read 0.
      if key.owner == OwnerLabels() {
        gauge.set(0.0)
      } else {
        registry.unregisterGauge(gauge)
        socketGauges[key] = nil
      }
    }
    for (key, n) in census.sockets { socketGauge(key).set(Double(n)) }
    for (owner, gauge) in stuckGauges where census.stuck[owner] == nil {
      registry.unregisterGauge(gauge)
      stuckGauges[owner] = nil
    }
    for (owner, n) in census.stuck {
      let gauge = stuckGauges[owner] ?? registry.makeGauge(
        name: Metric.stuck.name, labels: owner.pairs, help: Metric.stuck.help)
      stuckGauges[owner] = gauge
      gauge.set(Double(n))
    }
    oldest.set(Double(census.oldestNanoseconds) / 1e9)
    closeWaitPeers.set(Double(census.closeWaitPeers))
  }

  private func logStuck(_ holdings: [Holding], now: UInt64) {
    guard let stuckAfter = options.stuckAfter else { return }
    var stillStuck = Set<StuckIdentity>()
    for h in holdings where h.held.state == .attached && now - min(now, h.held.since) >= stuckAfter {
      let c = h.connection
      let id = StuckIdentity(digest: c.endpoints.digest(in: c.netns), since: h.held.since)
      stillStuck.insert(id)
      guard !logged.contains(id) else { continue }
      let owner = h.held.owner
      var metadata: Logger.Metadata = [
        "event": "stuck", "pid": "\(c.owner?.pid ?? 0)", "comm": "\(c.owner?.comm ?? "")", "path": "\(c.path.rawValue)",
        "state": "\(h.held.state.rawValue)", "local": "\(c.endpoints.local):\(c.endpoints.localPort)",
        "remote": "\(c.endpoints.remote):\(c.endpoints.remotePort)",
        "dwell_seconds": "\(Double(now - min(now, h.held.since)) / 1e9)",
        "peer_close_wait": "\(h.held.peerInCloseWait)",
      ]
      if !owner.pod.isEmpty {
        metadata["namespace"] = "\(owner.namespace)"
        metadata["pod"] = "\(owner.pod)"
        metadata["container"] = "\(owner.container)"
      }
      logger.warning("FIN_WAIT2 stuck: the application still holds the socket and the peer has not closed", metadata: metadata)
    }
    logged = stillStuck
  }

  private func exportLosses(_ losses: LossAccount) {
    for (counter, metric) in lossCounters {
      let value = losses[counter]
      let before = lossesExported[counter] ?? 0
      if value > before { metric.increment(by: Int64(value - before)) }
      lossesExported[counter] = max(value, before)
    }
  }

  // MARK: - Series

  private func labels(_ key: OwnerKey, workload: Workload?) -> OwnerLabels {
    if let known = labelCache[key] { return known }
    let pod = workload?.pod.flatMap { pods.pod($0) }
    let labels = OwnerLabels(comm: key.comm, workload: workload, pod: pod)
    labelCache[key] = labels
    return labels
  }

  private func socketGauge(_ key: Census.Key) -> Gauge {
    if let gauge = socketGauges[key] { return gauge }
    let gauge = registry.makeGauge(
      name: Metric.sockets.name, labels: [(MetricLabel.state, key.state.rawValue)] + key.owner.pairs,
      help: Metric.sockets.help)
    socketGauges[key] = gauge
    return gauge
  }

  private func duration(_ key: PathEnd) -> ValueHistogram {
    if let histogram = durations[key] { return histogram }
    let histogram = registry.makeValueHistogram(
      name: Metric.duration.name, labels: [(MetricLabel.path, key.path.rawValue), (MetricLabel.end, key.end.rawValue)],
      buckets: DwellBuckets.bounds, help: Metric.duration.help)
    durations[key] = histogram
    return histogram
  }

  /// The ended-connection counter of `path` and this owner, admitting the
  /// owner to the budget (and removing the series of the one it evicts).
  private func total(path: Path, owner key: OwnerKey, workload: Workload?) -> Counter {
    let cacheKey = PathOwner(path: path, owner: key)
    if let counter = totalCache[cacheKey] { return counter }
    let owner = labels(key, workload: workload)
    if let evicted = budget.admit(owner), let gone = totals.removeValue(forKey: evicted) {
      for counter in gone.values { registry.unregisterCounter(counter) }
      totalCache = totalCache.filter { entry in !gone.values.contains { $0 === entry.value } }
    }
    let counter = totals[owner]?[path] ?? registry.makeCounter(
      name: Metric.total.name, labels: [(MetricLabel.path, path.rawValue)] + owner.pairs, help: Metric.total.help)
    totals[owner, default: [:]][path] = counter
    totalCache[cacheKey] = counter
    return counter
  }
}

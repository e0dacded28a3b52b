import ArgumentParser
import FinwaitCore
import FinwaitTracing
import Logging

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Export FIN_WAIT2 metrics for Prometheus: /metrics, /healthz, /readyz.",
    discussion: """
      The per-node exporter: sockets in FIN_WAIT2 now (attached or orphaned) by \
      owner, dwell histograms by path and end, stuck sockets, the oldest dwell, \
      local peers in CLOSE_WAIT and every loss counter. Dwells of full sockets are \
      counted in the kernel, as in finwait hist. Owners are labelled namespace, pod \
      and container (Kubernetes, named from the kubelet's --pod-logs directories) or \
      comm (host processes); past --max-owners they are 'other'. One logfmt line on \
      stderr per stuck socket. /readyz answers 200 once attached; with \
      $NOTIFY_SOCKET set, READY=1 is sent then. Capabilities not needed once \
      attached are dropped. Metric names and capabilities: docs/serve.md.

      EXAMPLES:
        finwait serve                               # 127.0.0.1:9466
        finwait serve --listen 0.0.0.0:9466 --stuck 10m
        curl -s localhost:9466/metrics | grep finwait_fin_wait2_sockets
      """
  )

  @Option(help: ArgumentHelp("Address to serve on: HOST:PORT or [IPv6]:PORT.", valueName: "address"))
  var listen = ListenAddress.default.description

  @Option(name: .customLong("max-owners"), help: "Owners with their own labels; the rest are 'other'.")
  var maxOwners = 100

  @OptionGroup var stuck: StuckOption

  @Option(name: .customLong("pod-logs"), help: ArgumentHelp("The kubelet's pod log directory, to name pods.", valueName: "dir"))
  var podLogs = PodNames.defaultDirectory

  @OptionGroup var filters: FilterOptions

  @OptionGroup var tracing: TracerOptions

  func validate() throws {
    if ListenAddress(listen) == nil {
      throw ValidationError("--listen '\(listen)' is not HOST:PORT with a numeric IPv4 address or [IPv6]:PORT")
    }
    if maxOwners < 1 || maxOwners > 100_000 { throw ValidationError("--max-owners must be 1 to 100000") }
  }

  func run() throws {
    var config = TracingLoop.Configuration()
    filters.apply(to: &config.kernel)
    tracing.apply(to: &config)
    let finTimeout = tcpFinTimeoutSeconds()
    config.finTimeoutSeconds = finTimeout
    var options = ServeMode.Options()
    options.listen = ListenAddress(listen) ?? .default
    options.maxOwners = maxOwners
    options.podLogs = podLogs
    options.dropCapabilities = true
    options.stuckAfter = stuck.threshold(finTimeoutSeconds: finTimeout)
    try reportingErrors { () throws(FinwaitError) in
      // Every line serve writes is logfmt, warnings at start included.
      let log = ServeMode.logger(to: LineOutput.standardError, clock: monotonicNow, wallClock: .now())
      let missing = Capability.missingOptionalNow()
      for capability in missing {
        log.warning("without \(capability.name), finwait \(capability.withoutIt ?? "")")
      }
      var environment = try LoopEnvironment.system(
        config, reconcile: !tracing.noReconcile && !missing.contains(.sysAdmin), verbose: tracing.verbose,
        readiness: .fromEnvironment(fd: tracing.readyFD), without: "orphans in timewait are not followed",
        warn: { log.warning("\($0)") })
      if missing.contains(.dacReadSearch) { environment.workloads = nil }
      let metrics = ServeMetrics()
      let server = try MetricsServer(listen: options.listen, endpoint: metrics)
      defer { server.shutdown() }
      options.listen = server.address
      let mode = ServeMode(options: options, metrics: metrics, logger: log, clock: monotonicNow)
      try TracingLoop(configuration: config, environment: environment, mode: mode).run()
    }
  }
}

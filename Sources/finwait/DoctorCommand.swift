import ArgumentParser
import FinwaitCore
import FinwaitTracing

struct DoctorCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "doctor",
    abstract: "Say why each connection in FIN_WAIT2 (and each CLOSE_WAIT) is stuck, whom to blame, and what to change.",
    discussion: """
      Reads every network namespace's FIN_WAIT2 and CLOSE_WAIT sockets with tcp_info, the \
      namespaces' tcp_fin_timeout and keepalive sysctls, each socket's own keepalive and \
      TCP_LINGER2 settings, conntrack entries (NAT), the owning processes and pods, and what \
      a finwait tracer already running on the node saw (how each was closed, its call site \
      with --stack, its exact dwell); groups the connections by verdict and culprit, most \
      urgent first. Verdicts and JSON keys: docs/doctor.md. The filters keep a connection \
      when either end matches; every namespace is read whatever they say.

      EXAMPLES:
        finwait doctor                      # once, every namespace
        finwait doctor --comm nginx         # nginx's sockets and its peers'
        finwait doctor --watch 10s --json   # one JSON object every 10 s
      """
  )

  @OptionGroup var filters: FilterOptions

  @Flag(help: "Print one JSON object per run instead of text.")
  var json = false

  @Option(help: ArgumentHelp("Run again every interval (e.g. 10s) until interrupted.", valueName: "interval"),
          transform: TraceCommand.duration)
  var watch: UInt64?

  @Option(name: .customLong("pod-logs"), help: "The kubelet's pod log directory, where pod names are read.")
  var podLogs = PodNames.defaultDirectory

  @Flag(name: [.short, .long], help: "List every connection of every group, and print what the run cost on stderr.")
  var verbose = false

  func validate() throws {
    if watch == 0 { throw ValidationError("--watch must be above 0") }
  }

  func run() throws {
    try reportingErrors { () throws(FinwaitError) in
      var options = DoctorSession.Options()
      filters.apply(to: &options.filter)
      options.json = json
      options.verbose = verbose
      options.watch = watch
      try DoctorSession(options, environment: .system(podLogs: podLogs, watching: watch != nil)).run()
    }
  }
}

import ArgumentParser
import FinwaitCore
import FinwaitTracing

struct TraceCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "trace",
    abstract: "Trace connections through FIN_WAIT2 until Ctrl-C (the default command).",
    discussion: """
      Every connection whose FIN_WAIT2 ends is printed with the process that sent the \
      FIN (pid, comm, cgroup), the code path (shutdown_wr, shutdown_rdwr, close, exit, \
      other), whether the socket was still attached to its process or orphaned, the \
      dwell and how it ended. Orphans handed to timewait sockets are followed to their \
      real end (peer_fin, timeout) through sock_diag. Connections already in FIN_WAIT2 \
      are listed at start and tracked to their end. Attached connections still in \
      FIN_WAIT2 after --stuck are reported once while stuck, with the local peer that \
      holds CLOSE_WAIT. With --stack, each line names the call site (the closer's \
      user stack) and the summary lists the call sites with the most connections. A \
      summary with dwell histograms is printed on Ctrl-C, SIGTERM or after --duration.

      EXAMPLES:
        finwait                      # trace everything
        finwait --port 8080          # connections with local or remote port 8080
        finwait --comm nginx --json  # JSON lines for nginx's connections
        finwait --stuck 30s          # warn about attached FIN_WAIT2 older than 30 s
        finwait --stack --pid 1234   # which function in which binary sent each FIN
        finwait --netns 4026532345   # one pod's network namespace
        finwait snapshot             # what is in FIN_WAIT2 now, then exit
      """
  )

  @OptionGroup var filters: FilterOptions

  @Flag(help: "Print JSON lines instead of text.")
  var json = false

  @Flag(help: ArgumentHelp(
    "Name the call site: the user stack of the thread that sent the FIN, symbolized.",
    discussion: "Needs frame pointers in the program (see docs/stack.md)."))
  var stack = false

  @Option(name: .customLong("min-dwell"), help: "Print only connections whose FIN_WAIT2 lasted at least this long (e.g. 500ms, 2s).",
          transform: Self.duration)
  var minDwell: UInt64?

  @OptionGroup var stuck: StuckOption

  @Option(name: [.short, .long], help: "Stop after this long (e.g. 30s, 10m).", transform: Self.duration)
  var duration: UInt64?

  @Flag(name: .customLong("no-peers"), help: "Do not follow local peers' CLOSE_WAIT (saves a map lookup per passive close).")
  var noPeers = false

  @OptionGroup var tracing: TracerOptions

  static func duration(_ text: String) throws -> UInt64 {
    guard let ns = parseDuration(text) else {
      throw ValidationError("'\(text)' is not a duration: use a number with ns, us, ms, s, m or h (bare numbers are seconds)")
    }
    return ns
  }

  func validate() throws {
    if duration == 0 { throw ValidationError("--duration must be above 0") }
  }

  func run() throws {
    let finTimeout = tcpFinTimeoutSeconds()
    var config = TracingLoop.Configuration()
    filters.apply(to: &config.kernel)
    tracing.apply(to: &config)
    config.kernel.followPeers = !noPeers
    config.kernel.captureStacks = stack
    config.duration = duration
    config.finTimeoutSeconds = finTimeout
    config.stuckAfter = stuck.threshold(finTimeoutSeconds: finTimeout)
    var options = TraceMode.Options()
    options.format = json ? .json : .text
    options.minDwell = minDwell ?? 0
    try runTracingLoop(TraceMode(options: options), config, tracing: tracing,
                       without: "orphans in timewait are reported without their end")
  }
}

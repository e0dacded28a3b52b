import ArgumentParser
import FinwaitCore
import FinwaitTracing

struct HistCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "hist",
    abstract: "Print FIN_WAIT2 dwell histograms every interval, counted in the kernel.",
    discussion: """
      Connections that end FIN_WAIT2 as full sockets (peer_fin, reset) are counted \
      in a BPF map, with no per-connection record to user space: the cheap mode for \
      a busy node. Orphans handed to timewait sockets are followed to their real end \
      through sock_diag and counted when it comes. Histograms are per code path, and \
      per process, port or call site (--by stack: the closer's user stack, \
      symbolized) with --by. Like bcc's tools: -i interval, -c count, -m \
      milliseconds, -T timestamps.

      EXAMPLES:
        finwait hist                     # every second, by path, microseconds
        finwait hist -m -i 5 --by comm   # every 5 s, by process name, milliseconds
        finwait hist -c 3 --port 443     # three intervals, port 443 only
        finwait hist --by stack -i 10    # which function sent the FINs
      """
  )

  @OptionGroup var filters: FilterOptions

  @Option(name: [.short, .customLong("interval")], help: "Seconds between histograms.")
  var interval: Int = 1

  @Option(name: [.short, .customLong("count")], help: "Number of histograms to print, then exit.")
  var count: Int?

  @Flag(name: .customShort("m"), help: "Milliseconds instead of microseconds.")
  var milliseconds = false

  @Flag(name: .customShort("u"), help: "Microseconds (the default).")
  var microseconds = false

  @Flag(name: .customShort("T"), help: "Print the time above each histogram.")
  var timestamps = false

  @Option(help: ArgumentHelp("Also break down by comm, pid, cgroup, port (local) or stack (call site).", valueName: "key"))
  var by: Breakdown = .path

  @OptionGroup var tracing: TracerOptions

  func validate() throws {
    if interval < 1 { throw ValidationError("--interval must be at least 1 second") }
    if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    if milliseconds && microseconds { throw ValidationError("-m and -u cannot be used together") }
  }

  func run() throws {
    var config = TracingLoop.Configuration()
    filters.apply(to: &config.kernel)
    tracing.apply(to: &config)
    config.finTimeoutSeconds = tcpFinTimeoutSeconds()
    var options = HistMode.Options()
    options.by = by
    options.unitNanoseconds = milliseconds ? 1_000_000 : 1_000
    options.interval = UInt64(interval) * 1_000_000_000
    options.count = count
    options.timestamps = timestamps
    try runTracingLoop(HistMode(options: options), config, tracing: tracing, without: "orphans in timewait are not counted")
  }
}

extension Breakdown: ExpressibleByArgument {}

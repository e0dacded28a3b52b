import ArgumentParser
import FinwaitCore
import FinwaitTracing

struct TopCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "top",
    abstract: "A live view of who holds connections in FIN_WAIT2, refreshed like top.",
    discussion: """
      One row per process (or pod with --by pod): connections in FIN_WAIT2 now \
      (attached and orphaned), the oldest dwell, the p99 dwell and the count by path \
      of those that ended in the window, and the local peers holding CLOSE_WAIT \
      against them. Keys: s changes the sort, q quits (Ctrl-C too). When stdout is \
      not a terminal, the table is printed every interval instead.
      """
  )

  @OptionGroup var filters: FilterOptions

  @Option(name: [.short, .customLong("interval")], help: "Seconds between refreshes.")
  var interval: Int = 2

  @Option(help: "Seconds over which ended connections and their p99 are counted.")
  var window: Int = 60

  @Option(help: ArgumentHelp("One row per process or per pod.", valueName: "process|pod"))
  var by: TopTable.Grouping = .process

  @Option(help: ArgumentHelp("Sort by now, oldest, p99 or ended.", valueName: "key"))
  var sort: TopTable.SortKey = .now

  @Option(name: [.short, .customLong("count")], help: "Refreshes, then exit.")
  var count: Int?

  @OptionGroup var tracing: TracerOptions

  func validate() throws {
    if interval < 1 { throw ValidationError("--interval must be at least 1 second") }
    if window < interval { throw ValidationError("--window must be at least --interval") }
    if let count, count < 1 { throw ValidationError("--count must be at least 1") }
  }

  func run() throws {
    var config = TracingLoop.Configuration()
    filters.apply(to: &config.kernel)
    tracing.apply(to: &config)
    config.finTimeoutSeconds = tcpFinTimeoutSeconds()
    var options = TopMode.Options()
    options.grouping = by
    options.sortKey = sort
    options.interval = UInt64(interval) * 1_000_000_000
    options.window = UInt64(window) * 1_000_000_000
    options.count = count
    try runTracingLoop(TopMode(options: options), config, tracing: tracing, without: "orphans in timewait are not shown")
  }
}

extension TopTable.Grouping: ExpressibleByArgument {}
extension TopTable.SortKey: ExpressibleByArgument {}

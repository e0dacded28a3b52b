import ArgumentParser
import FinwaitCore
import FinwaitTracing

struct SnapshotCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "snapshot",
    abstract: "List the connections in FIN_WAIT2 now, in every network namespace, and exit.",
    discussion: """
      Attached sockets and orphans in timewait, with the owning process (read in \
      one BPF pass over every process's file table on a busy node, else from \
      /proc/PID/fd as ss -p finds it), a lower bound of the dwell, the deadline of \
      timewait orphans, and the local peer holding CLOSE_WAIT with how long it has.
      """
  )

  @OptionGroup var filters: FilterOptions

  @Flag(help: "Print JSON lines instead of text.")
  var json = false

  @Flag(name: [.short, .long], help: "Print what the dump cost (sockets, time) on stderr.")
  var verbose = false

  func run() throws {
    try reportingErrors { () throws(FinwaitError) in
      var filter = KernelConfig()
      filters.apply(to: &filter)
      try SnapshotSession(filter: filter, json: json, verbose: verbose).run()
    }
  }
}

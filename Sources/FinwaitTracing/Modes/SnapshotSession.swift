import FinwaitCore

/// `finwait snapshot`: the connections in FIN_WAIT2 right now, once.
public struct SnapshotSession {
  let filter: KernelConfig
  let json: Bool
  let verbose: Bool

  public init(filter: KernelConfig, json: Bool, verbose: Bool = false) {
    self.filter = filter
    self.json = json
    self.verbose = verbose
  }

  public func run() throws(FinwaitError) {
    let reconciliation = Reconciliation()
    try reconciliation.check()
    let err = LineOutput.standardError
    for warning in Preflight.warnings(for: filter, namespaces: reconciliation.sockets.namespaces()) {
      try err.write("finwait: warning: \(warning)")
    }
    let clock = WallClock.now()
    var records = reconciliation.snapshot(filter: filter, at: monotonicNow())
    if let workloads = Workloads() {
      for i in records.indices { workloads.attribute(&records[i]) }
    }
    let out = LineOutput.standardOutput
    if json {
      let format = JSONFormat(clock: clock)
      for r in records { try out.write(format.line(r)) }
    } else {
      let format = TextFormat(clock: clock, ownNetns: reconciliation.sockets.ownNamespace)
      try out.write(format.header)
      for r in records { try out.write(format.line(r)) }
      let orphans = records.filter(\.orphaned).count
      try out.write("\(records.count) connections in FIN_WAIT2: \(records.count - orphans) attached, \(orphans) orphaned in timewait. Dwell is a lower bound.")
    }
    try out.flush()
    if verbose {
      let c = reconciliation.lastSnapshotCost
      try err.write(
        "finwait: dumped \(c.sockets) sockets in \(c.namespaces) namespaces in \(formatDuration(nanoseconds: c.dumpNanoseconds)); "
          + "owners from /proc in \(formatDuration(nanoseconds: c.ownersNanoseconds))")
      try err.flush()
    }
  }
}

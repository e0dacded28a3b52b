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
    let workloads = Workloads()
    let out = LineOutput.standardOutput
    var count = 0, orphans = 0
    let json = json ? JSONFormat(clock: clock) : nil
    let text = json == nil ? TextFormat(clock: clock, ownNetns: reconciliation.sockets.ownNamespace) : nil
    if let text { try out.write(text.header) }
    try reconciliation.snapshot(filter: filter, at: monotonicNow()) { (record: Record) throws(FinwaitError) in
      var record = record
      workloads?.attribute(&record)
      count += 1
      if record.orphaned { orphans += 1 }
      if let json { try out.write(json.line(record)) } else if let text { try out.write(text.line(record)) }
    }
    if text != nil {
      try out.write("\(count) connections in FIN_WAIT2: \(count - orphans) attached, \(orphans) orphaned in timewait. Dwell is a lower bound.")
    }
    try out.flush()
    if verbose {
      let c = reconciliation.lastSnapshotCost
      try err.write(
        "finwait: dumped \(c.sockets) sockets in \(c.namespaces) namespaces in \(formatDuration(nanoseconds: c.dumpNanoseconds)); "
          + "owners from \(c.ownersSource.rawValue) in \(formatDuration(nanoseconds: c.ownersNanoseconds)), alongside the dump")
      try err.flush()
    }
  }
}

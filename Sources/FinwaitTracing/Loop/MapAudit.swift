import CFinwaitEvent
import FinwaitCore

/// Runs `KernelAudit` over the kernel map now and then, and once at exit:
/// repairs the FIN_WAIT2 starts the program did not see and drops the
/// entries whose end it did not see, telling the tracker about both.
final class MapAudit {
  /// How often, at least. Entries that never reached FIN_WAIT2 are checked
  /// every time; those in FIN_WAIT2 only when the kernel skipped program
  /// runs since the last audit (the only way their end goes unseen).
  var interval: UInt64 = 5_000_000_000
  /// The ring buffer is drained after this many sock_diag lookups, and this
  /// many dumped sockets or map entries walked, of one audit: walking a map
  /// of 200,000 takes as long as a burst needs to fill the ring.
  static let drainEvery = (lookups: 256, sockets: 8_192)
  /// Audits never take more than 1/budgetDivisor of a core.
  var budgetDivisor: UInt64 = 100
  private var nextRun: UInt64 = 0
  private var auditedMisses: UInt64 = 0
  /// The last sweep for new misses met entries too young to judge.
  private var sweepAgain = false
  /// Digests of the FIN_WAIT2 sockets sock_diag listed, sorted.
  private var inFinWait2: [UInt64] = []
  let sockets: any SocketTable
  /// CLOCK_MONOTONIC; a script's clock in tests.
  var clock: () -> UInt64 = monotonicNow

  struct Result {
    var found: [(raw: fw_event, entry: Event, finding: KernelAudit.Finding)] = []
    var at: UInt64 = 0
  }

  init(sockets: any SocketTable) {
    self.sockets = sockets
  }

  /// What the map and sock_diag disagree on, if an audit is due (`final`:
  /// whatever the schedule). `meanwhile` runs between the slow steps, so the
  /// ring buffer keeps draining while a large map or namespace is read.
  /// Memory stays flat with the map's size: entries are visited, not gathered,
  /// and a dumped socket costs an 8-byte digest.
  func check(_ tracer: any RecordSource, now: UInt64, final: Bool = false, meanwhile: () -> Void) -> Result? {
    guard final || now >= nextRun else { return nil }
    defer { nextRun = now + max(interval, (clock() - now) * budgetDivisor) }
    let misses = tracer.counters.recursionMisses
    let newMisses = misses != auditedMisses
    let everything = newMisses || sweepAgain

    // Entries still in FIN_WAIT1 by the map: usually a handful, each looked up.
    var suspects: [fw_event] = []
    var namespaces = Set<UInt32>()
    var walked = 0
    tracer.forEachTracked { raw in
      namespaces.insert(raw.netns)
      if raw.finWait2At == nil { suspects.append(raw) }
      walked += 1
      if walked % Self.drainEvery.sockets == 0 { meanwhile() }
    }
    meanwhile()
    var result = Result()
    for (i, raw) in suspects.enumerated() {
      // One sock_diag round trip each: a burst can leave thousands.
      if i > 0 && i % Self.drainEvery.lookups == 0 { meanwhile() }
      guard let entry = try? Event(mapEntry: raw), KernelAudit.isSettled(entry, now: clock()) else { continue }
      let socket = try? sockets.lookup(netns: raw.netns, endpoints: entry.connection.endpoints)
      result.at = clock()
      if let finding = KernelAudit.finding(for: entry, socket: socket ?? nil, now: result.at) {
        result.found.append((raw, entry, finding))
      }
    }
    guard everything else { return result }
    auditedMisses = misses
    // An end skipped within `grace` of its start cannot be judged yet: one
    // more sweep, at the next audit (more than `grace` later), judges every
    // entry that was too young this time.
    var unsettled = false
    defer { sweepAgain = unsettled && newMisses }

    // The kernel skipped program runs: any entry in FIN_WAIT2 may have ended unseen.
    // Sorted digests, in a buffer kept between audits: RSS does not move.
    inFinWait2.removeAll(keepingCapacity: true)
    for netns in namespaces {
      // A namespace that is gone took its sockets with it. Draining goes on
      // during a large dump too: 200,000 sockets take about a second, as
      // long as a burst takes to fill the ring buffer (bench/memory.sh).
      // Draining does not use sock_diag, so the dump is not disturbed.
      var dumped = 0
      try? sockets.forEach(netns: netns, states: SockDiag.mask([.finWait2])) { socket in
        if !socket.isTimewait { inFinWait2.append(socket.endpoints.digest(in: netns)) }
        dumped += 1
        if dumped % Self.drainEvery.sockets == 0 { meanwhile() }
      }
      meanwhile()
    }
    inFinWait2.sort()
    result.at = clock()
    var missing: [(raw: fw_event, entry: Event)] = []
    walked = 0
    tracer.forEachTracked { raw in
      walked += 1
      if walked % Self.drainEvery.sockets == 0 { meanwhile() }
      guard raw.finWait2At != nil, let entry = try? Event(mapEntry: raw),
        !contains(entry.connection.endpoints.digest(in: raw.netns))
      else { return }
      guard KernelAudit.isSettled(entry, now: result.at) else {
        unsettled = true
        return
      }
      missing.append((raw, entry))
    }
    if !missing.isEmpty { meanwhile() }
    // A dump is no proof of absence: it resumes each batch at a count into a
    // hash bucket, and sockets leaving a bucket meanwhile (request sockets
    // replaced at accept, in a burst) shift the rest past it. Each socket the
    // dump did not list is looked up exactly before its end is called missed.
    for (i, m) in missing.enumerated() {
      if i > 0 && i % Self.drainEvery.lookups == 0 { meanwhile() }
      let socket = try? sockets.lookup(netns: m.raw.netns, endpoints: m.entry.connection.endpoints)
      guard let finding = KernelAudit.finding(for: m.entry, socket: socket ?? nil, now: result.at) else { continue }
      result.found.append((m.raw, m.entry, finding))
    }
    return result
  }

  private func contains(_ digest: UInt64) -> Bool {
    var low = 0
    var high = inFinWait2.count
    while low < high {
      let mid = (low + high) / 2
      if inFinWait2[mid] < digest { low = mid + 1 } else { high = mid }
    }
    return low < inFinWait2.count && inFinWait2[low] == digest
  }

  /// Repairs or drops each finding's map entry and tells the tracker; an
  /// entry the program changed in the meantime is left to it.
  /// `followsAttached` false (hist mode): the kernel counts an attached
  /// connection's end itself, so a repaired start is only counted here.
  func apply(
    _ result: Result, _ tracer: any RecordSource, tracker: inout ConnectionTracker, followsAttached: Bool = true,
    emit: (Record) -> Void
  ) {
    for (raw, entry, finding) in result.found {
      switch finding {
      case let .finWait2Missed(by, attached):
        guard tracer.repairFinWait2(raw, at: by) else { continue }
        var repaired = entry
        repaired.timestamp = by
        repaired.finWait2At = by
        repaired.finWait2Inferred = true
        let seen = KernelAudit.Finding.finWait2Missed(by: by, attached: attached && followsAttached)
        tracker.handle(seen, of: repaired, at: result.at, emit: emit)
      case .endMissed:
        guard tracer.forget(raw) else { continue }
        tracker.handle(finding, of: entry, at: result.at, emit: emit)
      }
    }
  }
}

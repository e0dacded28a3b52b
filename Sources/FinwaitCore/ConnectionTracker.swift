/// Turns kernel events into per-connection records.
///
/// Only attached sockets need state here (the kernel sends an `enter` for
/// them so they can be watched for the stuck threshold); everything else is
/// settled by the single `leave` record, which carries what was gathered at
/// FIN_WAIT1 and FIN_WAIT2 entry. The tracker copes with starts it never saw,
/// lost records (a reused socket address ends the older connection as
/// `lost`) and an `enter` arriving after its own `leave`.
public struct ConnectionTracker {
  public struct Counters: Sendable, Equatable {
    /// `enter` records that arrived after their connection had ended.
    public var lateEnters = 0
    public init() {}
    /// Connections whose `leave` record never arrived.
    public var lostEnds = 0
    /// FIN_WAIT2 starts the program did not see, found in its map through sock_diag.
    public var recoveredStarts = 0
    /// Map entries in FIN_WAIT1 whose socket was gone when audited: whether
    /// it went through FIN_WAIT2 unseen is not known.
    public var staleEntries = 0
  }

  /// Dwell after which an attached connection is reported as stuck; nil: never.
  public let stuckAfter: UInt64?
  /// When tracing began: the lower bound for starts finwait did not see.
  public let tracingSince: UInt64
  public private(set) var counters = Counters()
  /// Orphans handed to timewait, followed to their real end when the caller
  /// feeds sock_diag dumps; nil: reported at once as `timewait_orphan`.
  public private(set) var orphans: OrphanReconciler?

  private var open = OpenConnections()
  /// Attached connections that were in FIN_WAIT2 before tracing began; their
  /// end arrives as a `leave` without a start, matched by namespace and tuple.
  private var existing: [OrphanReconciler.Key: Record] = [:]
  /// Attached connections in the order they entered, for the stuck check.
  private var entryOrder = FIFO<(socket: UInt64, enteredAt: UInt64)>()
  /// Entries the stuck check still has to look at (tests: it stays bounded).
  var queuedForStuckCheck: Int { entryOrder.count }
  /// Recently ended (socket, FIN_WAIT2 entry) pairs whose `enter` is still due.
  private var endedBeforeEnter = BoundedSet<SocketEntry>(capacity: 4096)

  /// Local peers' closes of orphans the kernel kept as full sockets (a
  /// tcp_fin_timeout or TCP_LINGER2 above TCP_TIMEWAIT_LEN, or the ACK of
  /// their FIN handled while close() still held the socket): no record is
  /// open for them, and their `leave` follows the peer's FIN. Held by
  /// socket until it does.
  private var peerClosesBeforeLeave = BoundedDictionary<UInt64, (endpoints: Endpoints, peer: Peer)>(capacity: 4096)

  /// Peer closes held for their leave (tests: it stays bounded).
  var peerClosesAwaitingLeave: Int { peerClosesBeforeLeave.count }

  private struct SocketEntry: Hashable {
    var socket: UInt64
    var enteredAt: UInt64
  }

  public init(stuckAfter: UInt64?, tracingSince: UInt64, reconcilesOrphans: Bool = false) {
    self.stuckAfter = stuckAfter
    self.tracingSince = tracingSince
    orphans = reconcilesOrphans ? OrphanReconciler(tracingSince: tracingSince) : nil
  }

  /// Connections currently known to sit attached in FIN_WAIT2.
  public var attachedInFinWait2: Int { open.count }

  /// Each attached connection in FIN_WAIT2 now, decoded (`finwait top`).
  public func forEachAttached(_ body: (Event) -> Void) {
    open.forEach(body)
  }

  /// Each attached connection found in FIN_WAIT2 at start that has not ended.
  public func forEachListedAtStart(_ body: (Record) -> Void) {
    existing.values.forEach(body)
  }

  public mutating func handle(_ event: Event, emit: (Record) -> Void) {
    switch event.kind {
    case .enter: enter(event, emit: emit)
    case let .leave(end): leave(event, end: end, emit: emit)
    case .inFlight: break  // only meaningful to finish(at:inFlight:emit:)
    case .peerClose: peerClosed(event, emit: emit)
    }
  }

  /// Takes over connections found in FIN_WAIT2 at start (`Snapshot.records`):
  /// attached ones end through the tracepoint, timewait orphans through
  /// reconciliation.
  /// `listedBy`: when the listing finished. An orphan listed then was
  /// handed over by that time, not only by the record's own timestamp (taken
  /// before the dump): a handoff the tracepoint reports during the dump is the
  /// same connection, not a new one on the same tuple.
  public mutating func adopt(existing records: [Record], listedBy: UInt64 = 0, emit: (Record) -> Void) {
    for r in records where r.kind == .existing {
      let since = r.dwellSince
      var record = r
      record.kind = .finWait2
      if r.orphaned {
        record.end = .timewaitOrphan
        orphans?.follow(record, enteredAt: since, handedOverAt: max(r.timestamp, listedBy), deadline: r.deadline,
                        startIsLowerBound: true, emit: emit)
      } else {
        existing[OrphanReconciler.Key(netns: r.connection.netns, endpoints: r.connection.endpoints)] = record
      }
    }
  }

  /// Hands a sock_diag dump of `netns` to the orphan reconciler.
  public mutating func observe(
    netns: UInt32, sockets: [DiagSocket], at now: UInt64, finTimeout: UInt64?, emit: (Record) -> Void
  ) {
    orphans?.observe(netns: netns, sockets: sockets, at: now, finTimeout: finTimeout, emit: emit)
  }

  private mutating func peerClosed(_ event: Event, emit: (Record) -> Void) {
    // Attached: the peer's FIN follows; the leave record will carry this.
    guard let peer = event.peer else { return }
    if open.merge(peer, into: event.connection.socket, endpoints: event.connection.endpoints) {
      return
    }
    // Handed to timewait: followed there. Else a full orphan: its leave is due.
    if orphans?.peerClosed(event, emit: emit) == true { return }
    peerClosesBeforeLeave.set((event.connection.endpoints, peer), for: event.connection.socket)
  }

  private mutating func enter(_ event: Event, emit: (Record) -> Void) {
    let socket = event.connection.socket
    let enteredAt = event.enteredAt
    if endedBeforeEnter.remove(SocketEntry(socket: socket, enteredAt: enteredAt)) {
      counters.lateEnters += 1
      return
    }
    if let previous = open.enteredAt(socket) {
      guard previous < enteredAt else { return }  // duplicate or stale
      if let stale = open.remove(socket)?.event { reportLost(stale, emit: emit) }
    }
    open.insert(event)
    // Only the stuck check drains this queue: without it, it would only grow.
    if stuckAfter != nil {
      entryOrder.append((socket, enteredAt))
      // Connections that already ended stay queued until the threshold: at
      // 7,000 attached connections a second and a 60 s threshold that grew
      // RSS by 14 MB (measured). Dropping them when they outnumber the open
      // ones keeps the queue within twice the open set, at O(1) amortized.
      if entryOrder.count > 2 * open.count + 1024 {
        entryOrder.retain { open.enteredAt($0.socket) == $0.enteredAt }
      }
    }
    // Listed at start while it was entering: the tracepoint's view replaces it.
    if !existing.isEmpty {
      existing.removeValue(forKey: OrphanReconciler.Key(netns: event.connection.netns, endpoints: event.connection.endpoints))
    }
  }

  private mutating func leave(_ event: Event, end: End, emit: (Record) -> Void) {
    var opened = open.remove(event.connection.socket)
    if let previous = opened, previous.finWait2At != event.finWait2At {
      if let stale = previous.event { reportLost(stale, emit: emit) }
      opened = nil
    }
    if opened == nil, !event.connection.orphanedAtEntry, let enteredAt = event.finWait2At {
      endedBeforeEnter.insert(SocketEntry(socket: event.connection.socket, enteredAt: enteredAt))
    }
    let dwell: Dwell
    if let enteredAt = event.finWait2At {
      let spent = event.timestamp &- enteredAt
      dwell = end == .timewaitOrphan ? .pending(observed: spent)
        : event.finWait2Inferred ? .atLeast(spent) : .exact(spent)
    } else {
      let spent = event.timestamp &- min(tracingSince, event.timestamp)
      dwell = end == .timewaitOrphan ? .pending(observed: spent) : .atLeast(spent)
    }
    var record = Record(event, kind: .finWait2, at: event.timestamp, dwell: dwell, end: end)
    var start = (at: event.finWait2At, isLowerBound: event.finWait2Inferred)
    // Empty once the connections found at start have ended: then the key
    // need not be hashed for every record.
    let listed = existing.isEmpty ? nil : existing.removeValue(
      forKey: OrphanReconciler.Key(netns: event.connection.netns, endpoints: event.connection.endpoints))
    if event.finWait2At == nil, let known = listed {
      // Found at start: the snapshot knows the owner and an earlier start.
      let since = known.dwellSince
      record.connection.owner = known.connection.owner
      record.peer = known.peer.map { $0.merged(with: event.peer) } ?? event.peer
      let spent = event.timestamp - min(event.timestamp, since)
      record.dwell = end == .timewaitOrphan ? .pending(observed: spent) : .atLeast(spent)
      start = (since, true)
    }
    if let known = opened?.peer {
      record.peer = (event.peer ?? known).merged(with: known)
    } else if !peerClosesBeforeLeave.isEmpty, let closed = peerClosesBeforeLeave.removeValue(forKey: event.connection.socket),
      closed.endpoints == event.connection.endpoints
    {
      record.peer = (record.peer ?? closed.peer).merged(with: closed.peer)
    }
    record.end(end, at: event.timestamp)
    if end == .timewaitOrphan, orphans != nil {
      orphans?.follow(record, enteredAt: start.at, handedOverAt: event.timestamp,
                      startIsLowerBound: start.isLowerBound, emit: emit)
      return
    }
    emit(record)
  }

  /// Acts on what an audit of the kernel map found (`KernelAudit`): a
  /// FIN_WAIT2 start the program did not see (`entry` as repaired), or an
  /// end it did not see (`entry` as the map held it).
  public mutating func handle(_ finding: KernelAudit.Finding, of entry: Event, at now: UInt64, emit: (Record) -> Void) {
    switch finding {
    case .finWait2Missed(_, let attached):
      counters.recoveredStarts += 1
      if attached {
        var enter = entry
        enter.kind = .enter
        handle(enter, emit: emit)
      }
    case .endMissed:
      guard let since = entry.finWait2At else {
        counters.staleEntries += 1
        return
      }
      counters.lostEnds += 1
      let known = open.enteredAt(entry.connection.socket) == since
        ? open.remove(entry.connection.socket)?.event ?? entry : entry
      emit(Record(known, kind: .finWait2, at: now, dwell: .atLeast(0), end: .lost))
    }
  }

  /// `stale` is already out of `open`: a newer connection took its socket.
  private mutating func reportLost(_ stale: Event, emit: (Record) -> Void) {
    counters.lostEnds += 1
    emit(Record(stale, kind: .finWait2, at: stale.enteredAt, dwell: .atLeast(0), end: .lost))
  }

  /// Reports, once each, attached connections whose dwell reached `stuckAfter`.
  public mutating func reportStuck(now: UInt64, emit: (Record) -> Void) {
    guard let stuckAfter else { return }
    while let first = entryOrder.first, now &- first.enteredAt >= stuckAfter, now >= first.enteredAt {
      entryOrder.removeFirst()
      guard let event = open.markStuck(first.socket, enteredAt: first.enteredAt) else { continue }
      emit(Record(event, kind: .stuck, at: now, dwell: .atLeast(now - first.enteredAt), end: nil))
    }
  }

  /// Ends everything still in FIN_WAIT2 as `tracer_exit`: the attached
  /// connections known here and whatever else the kernel map still holds
  /// (`inFlight`: orphans kept as full sockets, starts whose `enter` was lost).
  public mutating func finish(at now: UInt64, inFlight: [Event], emit: (Record) -> Void) {
    var seen = Set<UInt64>()
    for event in open.byEntry {
      seen.insert(event.connection.socket)
      emit(Record(event, kind: .finWait2, at: now,
                  dwell: .atLeast(now &- min(event.enteredAt, now)), end: .tracerExit))
    }
    for event in inFlight where !seen.contains(event.connection.socket) {
      let since = min(event.finWait2At ?? tracingSince, now)
      emit(Record(event, kind: .finWait2, at: now, dwell: .atLeast(now - since), end: .tracerExit))
    }
    for var record in existing.values.sorted(by: { $0.timestamp < $1.timestamp }) {
      let since = record.dwellSince
      record.timestamp = now
      record.end = .tracerExit
      record.dwell = .atLeast(now - min(now, since))
      emit(record)
    }
    open.removeAll()
    existing.removeAll()
    entryOrder.removeAll()
    orphans?.finish(at: now, emit: emit)
  }
}

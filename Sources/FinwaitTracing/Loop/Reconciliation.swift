import FinwaitCore

/// The I/O behind orphan reconciliation and snapshots: socket dumps per
/// namespace, fin timeouts, socket owners, all through a `SocketTable`.
public final class Reconciliation {
  public let sockets: any SocketTable
  /// CLOCK_MONOTONIC; a script's clock in tests.
  public var clock: () -> UInt64 = monotonicNow
  private var finTimeouts: [UInt32: UInt64] = [:]
  /// How often pending orphans are checked, at most. The peer_fin time comes
  /// from the timewait timer (ms) and a timeout from the deadline, so this
  /// bounds only how late the record is printed, not its accuracy.
  public var interval: UInt64 = 250_000_000
  /// Polls never take more than 1/budgetDivisor of a core: a slow dump (many
  /// sockets) spaces the next one out.
  public var budgetDivisor: UInt64 = 20
  private var nextPoll: UInt64 = 0

  public init(sockets: any SocketTable = SockDiag()) {
    self.sockets = sockets
  }

  /// Fails if sock_diag is unusable in our own namespace (no tcp_diag):
  /// an empty state mask costs a round trip, not a dump.
  public func check() throws(FinwaitError) {
    try sockets.forEach(netns: sockets.ownNamespace, states: 0) { _ in }
  }

  public func finTimeout(of netns: UInt32) -> UInt64? {
    if let known = finTimeouts[netns] { return known }
    let value = sockets.finTimeout(of: netns)
    if let value { finTimeouts[netns] = value }
    return value
  }

  /// What a snapshot cost: sockets dumped and time spent, for `--verbose`.
  public struct SnapshotCost: Sendable {
    public var namespaces = 0
    public var sockets = 0
    public var dumpNanoseconds: UInt64 = 0
    public var ownersNanoseconds: UInt64 = 0
    public var ownersSource = SocketOwners.Source.proc
  }

  public private(set) var lastSnapshotCost = SnapshotCost()

  /// FIN_WAIT2 (full and timewait) and CLOSE_WAIT sockets of every namespace
  /// (or only `netns`), as `existing` records that pass `filter`.
  public func snapshot(filter: KernelConfig, at now: UInt64) -> [Record] {
    var records: [Record] = []
    snapshot(filter: filter, at: now) { records.append($0) }
    return records
  }

  /// As `snapshot(filter:at:)`, one record at a time, oldest first: what is
  /// kept of each socket is compact, and no record outlives `body`.
  public func snapshot<E: Error>(filter: KernelConfig, at now: UInt64, _ body: (Record) throws(E) -> Void) throws(E) {
    var cost = SnapshotCost()
    let started = clock()
    // The owner scan needs nothing from the dump: it runs alongside it.
    let table = sockets, tick = clock
    let scan = BackgroundWork { () -> (SocketOwners, UInt64) in
      let from = tick()
      let owners = table.owners()
      return (owners, tick() - from)
    }
    let targets = filter.netns.map { [$0] } ?? sockets.namespaces()
    let states = SockDiag.mask([.finWait2, .closeWait])
    var dumps: [Snapshot.Dump] = []
    for netns in targets {
      var dump = Snapshot.Dump(netns: netns, finTimeout: finTimeout(of: netns))
      guard (try? sockets.forEach(netns: netns, states: states, { dump.add($0) })) != nil else { continue }
      cost.sockets += dump.sockets.count
      dumps.append(dump)
      if netns != sockets.ownNamespace { sockets.release(netns) }
    }
    cost.namespaces = dumps.count
    cost.dumpNanoseconds = clock() - started
    let (owners, scanned) = scan.wait()
    cost.ownersNanoseconds = scanned
    cost.ownersSource = owners.source
    lastSnapshotCost = cost
    try Snapshot.forEachRecord(dumps, owner: { owners.owner(ofInode: $0) }, now: now) { (record: Record) throws(E) in
      if filter.matches(record) { try body(record) }
    }
  }

  /// The sockets of followed orphans, per namespace, as one poll found them.
  public struct OrphanDumps {
    var dumps: [(netns: UInt32, sockets: [DiagSocket], at: UInt64)] = []
    var namespaces: Set<UInt32> = []
    var startedAt: UInt64 = 0
  }

  /// Dumps the namespaces with pending orphans, at most every `interval`
  /// (`force`: now); nil when no poll is due. The caller drains the ring
  /// buffer before handing the result to `observe`: a local peer's close is
  /// queued before its FIN leaves, so a timewait socket a dump shows ended by
  /// that FIN has its PEER_CLOSE record in the ring already, and draining it
  /// first names the peer however slow the kernel is.
  public func dumpFollowed(_ orphans: OrphanReconciler?, now: UInt64, force: Bool = false) -> OrphanDumps? {
    guard let orphans, orphans.count > 0, force || now >= nextPoll else { return nil }
    let states = SockDiag.mask([.finWait2, .timeWait])
    var result = OrphanDumps(namespaces: orphans.namespaces, startedAt: now)
    for netns in orphans.namespaces {
      // Only the followed orphans' sockets are kept: a busy namespace holds
      // 100,000s of TIME_WAIT sockets, and keeping them all cost 11 MB of
      // RSS for minutes in the soak. A namespace that is gone took its
      // timewait sockets with it.
      var followed: [DiagSocket] = []
      try? sockets.forEach(netns: netns, states: states) { socket in
        if socket.isTimewait, orphans.isFollowing(netns: netns, endpoints: socket.endpoints) { followed.append(socket) }
      }
      result.dumps.append((netns, followed, clock()))
    }
    return result
  }

  /// Settles the followed orphans a poll's dumps show ended.
  public func observe(_ polled: OrphanDumps, into tracker: inout ConnectionTracker, emit: (Record) -> Void) {
    for dump in polled.dumps {
      tracker.observe(netns: dump.netns, sockets: dump.sockets, at: dump.at, finTimeout: finTimeout(of: dump.netns), emit: emit)
    }
    let spent = clock() - polled.startedAt
    nextPoll = polled.startedAt + max(interval, spent * budgetDivisor)
    let still = tracker.orphans?.namespaces ?? []
    for netns in polled.namespaces.subtracting(still) where netns != sockets.ownNamespace { sockets.release(netns) }
  }

  /// How long a CLOSE_WAIT dump and a /proc owner scan are reused, at least:
  /// thousands of records at exit cost one of each, not one per record.
  public var lookupReuse: UInt64 = 1_000_000_000
  /// A lookup is reused for this many times what it cost: a /proc scan of
  /// 400,000 descriptors takes seconds, and must not run again for every record.
  public var lookupReuseFactor: UInt64 = 10
  /// CLOSE_WAIT socket inodes by digest of their endpoints: 12 bytes a
  /// socket, where 200,000 stuck connections held 200,000 DiagSockets.
  private var closeWait: [UInt32: (until: UInt64, inodes: [UInt64: UInt32])] = [:]
  private var owners: (until: UInt64, owners: SocketOwners)?

  /// When a lookup that began at `start` and ends now stops being reused.
  private func reuseUntil(since start: UInt64) -> UInt64 {
    let end = clock()
    return end + max(lookupReuse, (end - start) * lookupReuseFactor)
  }

  /// Who holds the local peer's socket, for a peer still in CLOSE_WAIT.
  public func resolveOwner(of peer: Peer, for endpoints: Endpoints) -> Peer {
    guard peer.owner == nil, peer.closedAt == nil else { return peer }
    let now = clock()
    if closeWait[peer.netns].map({ now >= $0.until }) ?? true {
      closeWait[peer.netns] = nil  // freed before the next is built
      var inodes: [UInt64: UInt32] = [:]
      try? sockets.forEach(netns: peer.netns, states: SockDiag.mask([.closeWait])) { socket in
        inodes[socket.endpoints.digest(in: peer.netns)] = socket.inode
      }
      closeWait[peer.netns] = (reuseUntil(since: now), inodes)
    }
    guard let inode = closeWait[peer.netns]?.inodes[endpoints.reversed.digest(in: peer.netns)] else { return peer }
    if owners.map({ now >= $0.until }) ?? true {
      let start = clock()
      owners = nil  // freed before the next scan
      let scanned = sockets.owners()
      owners = (reuseUntil(since: start), scanned)
    }
    var resolved = peer
    resolved.owner = owners?.owners.owner(ofInode: inode)
    return resolved
  }
}

import FinwaitCore

/// The I/O behind orphan reconciliation and snapshots: sock_diag dumps per
/// namespace, fin timeouts, socket owners from /proc.
public final class Reconciliation {
  public let namespaces = Namespaces()
  let diag: SockDiag
  private var finTimeouts: [UInt32: UInt64] = [:]
  /// How often pending orphans are checked, at most. The peer_fin time comes
  /// from the timewait timer (ms) and a timeout from the deadline, so this
  /// bounds only how late the record is printed, not its accuracy.
  public var interval: UInt64 = 250_000_000
  /// Polls never take more than 1/budgetDivisor of a core: a slow dump (many
  /// sockets) spaces the next one out.
  public var budgetDivisor: UInt64 = 20
  private var nextPoll: UInt64 = 0

  public init() {
    diag = SockDiag(namespaces: namespaces)
  }

  /// Fails if sock_diag is unusable in our own namespace (no tcp_diag):
  /// an empty state mask costs a round trip, not a dump.
  public func check() throws(FinwaitError) {
    _ = try diag.dump(netns: namespaces.own, states: 0)
  }

  public func finTimeout(of netns: UInt32) -> UInt64? {
    if let known = finTimeouts[netns] { return known }
    let value = namespaces.finTimeout(of: netns)
    if let value { finTimeouts[netns] = value }
    return value
  }

  /// What a snapshot cost: sockets dumped and time spent, for `--verbose`.
  public struct SnapshotCost: Sendable {
    public var namespaces = 0
    public var sockets = 0
    public var dumpNanoseconds: UInt64 = 0
    public var ownersNanoseconds: UInt64 = 0
  }

  public private(set) var lastSnapshotCost = SnapshotCost()

  /// FIN_WAIT2 (full and timewait) and CLOSE_WAIT sockets of every namespace
  /// (or only `netns`), as `existing` records that pass `filter`.
  public func snapshot(filter: RecordFilter, at now: UInt64) -> [Record] {
    var cost = SnapshotCost()
    let started = monotonicNow()
    let targets = filter.netns.map { [$0] } ?? namespaces.all()
    let states = SockDiag.mask([.finWait2, .closeWait])
    var dumps: [Snapshot.Dump] = []
    for netns in targets {
      guard let sockets = try? diag.dump(netns: netns, states: states) else { continue }
      dumps.append(Snapshot.Dump(netns: netns, sockets: sockets, finTimeout: finTimeout(of: netns)))
      cost.sockets += sockets.count
      if netns != namespaces.own { diag.release(netns) }
    }
    cost.namespaces = dumps.count
    let dumped = monotonicNow()
    cost.dumpNanoseconds = dumped - started
    let owners = SocketOwners.scan()
    cost.ownersNanoseconds = monotonicNow() - dumped
    lastSnapshotCost = cost
    return Snapshot.records(dumps, owner: { owners.owner(ofInode: $0) }, now: now).filter(filter.matches)
  }

  /// Dumps the namespaces with pending orphans, at most every `interval`.
  public func poll(_ tracker: inout ConnectionTracker, now: UInt64, force: Bool = false, emit: (Record) -> Void) {
    guard let orphans = tracker.orphans, orphans.count > 0, force || now >= nextPoll else { return }
    let states = SockDiag.mask([.finWait2, .timeWait])
    for netns in orphans.namespaces {
      // Only the followed orphans' sockets are kept: a busy namespace holds
      // 100,000s of TIME_WAIT sockets, and keeping them all cost 11 MB of
      // RSS for minutes in the soak. A namespace that is gone took its
      // timewait sockets with it.
      var sockets: [DiagSocket] = []
      try? diag.forEach(netns: netns, states: states) { socket in
        if socket.isTimewait, orphans.isFollowing(netns: netns, endpoints: socket.endpoints) { sockets.append(socket) }
      }
      tracker.observe(netns: netns, sockets: sockets, at: monotonicNow(), finTimeout: finTimeout(of: netns), emit: emit)
    }
    let spent = monotonicNow() - now
    nextPoll = now + max(interval, spent * budgetDivisor)
    let still = tracker.orphans?.namespaces ?? []
    for netns in orphans.namespaces.subtracting(still) where netns != namespaces.own { diag.release(netns) }
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
    let end = monotonicNow()
    return end + max(lookupReuse, (end - start) * lookupReuseFactor)
  }

  /// Who holds the local peer's socket, for a peer still in CLOSE_WAIT.
  public func resolveOwner(of peer: Peer, for endpoints: Endpoints) -> Peer {
    guard peer.owner == nil, peer.closedAt == nil else { return peer }
    let now = monotonicNow()
    if closeWait[peer.netns].map({ now >= $0.until }) ?? true {
      closeWait[peer.netns] = nil  // freed before the next is built
      var inodes: [UInt64: UInt32] = [:]
      try? diag.forEach(netns: peer.netns, states: SockDiag.mask([.closeWait])) { socket in
        inodes[socket.endpoints.digest(in: peer.netns)] = socket.inode
      }
      closeWait[peer.netns] = (reuseUntil(since: now), inodes)
    }
    guard let inode = closeWait[peer.netns]?.inodes[endpoints.reversed.digest(in: peer.netns)] else { return peer }
    if owners.map({ now >= $0.until }) ?? true {
      let start = monotonicNow()
      owners = nil  // freed before the next scan
      let scanned = SocketOwners.scan()
      owners = (reuseUntil(since: start), scanned)
    }
    var resolved = peer
    resolved.owner = owners?.owners.owner(ofInode: inode)
    return resolved
  }
}

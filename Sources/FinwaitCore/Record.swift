/// How long a connection dwelt in FIN_WAIT2, as far as finwait can know.
public enum Dwell: Sendable, Equatable {
  /// FIN_WAIT2 began and ended while traced.
  case exact(UInt64)
  /// FIN_WAIT2 was still going on (finwait stopped, or it began before
  /// finwait attached): the true dwell is at least this.
  case atLeast(UInt64)
  /// Handed to a timewait socket: FIN_WAIT2 continues out of the tracepoint's
  /// sight for up to the fin timeout. `observed` is only the part spent as a
  /// full socket and must not be read as the dwell.
  case pending(observed: UInt64)

  /// Nanoseconds known to have been spent in FIN_WAIT2.
  public var knownNanoseconds: UInt64 {
    switch self {
    case let .exact(ns), let .atLeast(ns), let .pending(ns): ns
    }
  }
}

/// The other end of a connection, when it is on this host (loopback,
/// same-node pods, node-local proxies): usually the application that never
/// closed its side.
public struct Peer: Sendable, Equatable {
  public var netns: UInt32
  /// When it entered CLOSE_WAIT (our FIN arrived), CLOCK_MONOTONIC ns.
  public var closeWaitSince: UInt64?
  /// When it left CLOSE_WAIT by closing (its FIN went out).
  public var closedAt: UInt64?
  /// Known from its close (process context) or from its socket's owner in /proc.
  public var owner: Owner?

  public init(netns: UInt32, closeWaitSince: UInt64? = nil, closedAt: UInt64? = nil, owner: Owner? = nil) {
    self.netns = netns
    self.closeWaitSince = closeWaitSince
    self.closedAt = closedAt
    self.owner = owner
  }

  /// How long it sat in CLOSE_WAIT: until it closed, or until `now`.
  public func closeWait(now: UInt64) -> UInt64? {
    guard let since = closeWaitSince else { return nil }
    let until = closedAt ?? now
    return until >= since ? until - since : 0
  }

  /// Combines what two records know; the other's facts win where both know one.
  public func merged(with other: Peer?) -> Peer {
    guard let other else { return self }
    return Peer(netns: other.netns != 0 ? other.netns : netns,
                closeWaitSince: other.closeWaitSince ?? closeWaitSince,
                closedAt: other.closedAt ?? closedAt, owner: other.owner ?? owner)
  }
}

/// One line of output: a connection whose FIN_WAIT2 ended (or that finwait
/// stopped watching), or one that crossed the stuck threshold.
public struct Record: Sendable, Equatable {
  public enum Kind: String, Sendable {
    case finWait2 = "fin_wait2"
    case stuck
    /// Already in FIN_WAIT2 when finwait started (or `finwait snapshot`).
    case existing
  }

  public var kind: Kind
  /// CLOCK_MONOTONIC nanoseconds of what this record reports.
  public var timestamp: UInt64
  public var connection: Connection
  /// Orphaned when the record was written (the application may have closed
  /// an attached FIN_WAIT2 socket since it entered).
  public var orphaned: Bool
  public var dwell: Dwell
  /// nil for `stuck` records.
  public var end: End?
  public var peer: Peer?
  /// For an orphan still in timewait: when the kernel will drop it (monotonic ns).
  public var deadline: UInt64?
  /// The owner's container and pod, from its cgroup; nil on the host or unknown.
  public var workload: Workload?
  /// The local peer's container and pod (the peer is often the culprit).
  public var peerWorkload: Workload?
  /// `--stack`: the closer's user stack, named.
  public var stack: CallStack?

  public init(
    kind: Kind, timestamp: UInt64, connection: Connection, orphaned: Bool, dwell: Dwell, end: End?,
    peer: Peer? = nil, deadline: UInt64? = nil
  ) {
    self.peer = peer
    self.deadline = deadline
    self.kind = kind
    self.timestamp = timestamp
    self.connection = connection
    self.orphaned = orphaned
    self.dwell = dwell
    self.end = end
  }

  /// When the dwell this record knows of began (its start, or the start's
  /// lower bound for connections found already in FIN_WAIT2).
  public var dwellSince: UInt64 { timestamp - min(timestamp, dwell.knownNanoseconds) }

  /// Sets the end; a peer's FIN means a local peer has closed by then.
  mutating func end(_ end: End, at time: UInt64) {
    self.end = end
    timestamp = time
    if end == .peerFin, peer != nil, peer?.closedAt == nil { peer?.closedAt = time }
  }

  init(_ event: Event, kind: Kind, at timestamp: UInt64, dwell: Dwell, end: End?) {
    self.init(
      kind: kind, timestamp: timestamp, connection: event.connection,
      orphaned: event.orphanedAtEnd || event.connection.orphanedAtEntry, dwell: dwell, end: end,
      peer: event.peer)
  }
}

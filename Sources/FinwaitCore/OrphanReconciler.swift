/// Follows orphans after the kernel handed them to a timewait socket, where
/// the tracepoint cannot see them, to their real end.
///
/// Evidence, best first: the local peer's CLOSE_WAIT -> LAST_ACK record
/// (exact); a sock_diag dump showing the timewait socket re-armed to TIME_WAIT
/// (the peer's FIN came `TIME_WAIT length - remaining` ago, to the
/// millisecond); the socket gone from two dumps in a row at its deadline
/// (timeout) or before it (reset). Pure: the caller does the dumps.
public struct OrphanReconciler {
  /// The kernel's TCP_TIMEWAIT_LEN: a timewait socket's TIME_WAIT timer.
  public static let timeWaitLength: UInt64 = 60_000_000_000
  /// How late a timer may fire and still count as the deadline (timer-wheel
  /// granularity at long timeouts, plus one poll).
  public static let deadlineSlack: UInt64 = 1_000_000_000

  public struct Key: Hashable, Sendable {
    public var netns: UInt32
    public var endpoints: Endpoints

    public init(netns: UInt32, endpoints: Endpoints) {
      self.netns = netns
      self.endpoints = endpoints
    }

    /// Whole words, as this is hashed for every orphan record: the
    /// synthesized hash feeds the hasher field by field, IPv4 byte by byte.
    public func hash(into hasher: inout Hasher) {
      hasher.combine(UInt64(netns) << 32 | UInt64(endpoints.localPort) << 16 | UInt64(endpoints.remotePort))
      Self.combine(endpoints.local, into: &hasher)
      Self.combine(endpoints.remote, into: &hasher)
    }

    private static func combine(_ address: IPAddress, into hasher: inout Hasher) {
      switch address {
      case let .v4(a, b, c, d):
        hasher.combine(UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
      case let .v6(high, low):
        hasher.combine(high)
        hasher.combine(low)
      }
    }
  }

  struct Pending {
    var record: Record
    var enteredAt: UInt64?
    /// enteredAt is an estimate that can only be late (a snapshot's lower bound).
    var startIsLowerBound = false
    var handedOverAt: UInt64
    /// From the timewait socket's timer, once seen.
    var deadline: UInt64?
    var seen = false
    /// Consecutive dumps without it. A multi-part netlink dump can skip
    /// sockets while the hash table changes, so one miss proves nothing.
    var misses = 0
  }

  /// Dumps in a row a socket must be missing from before it counts as gone.
  public static let missesToConclude = 2

  private var pending: [Key: Pending] = [:]
  /// Lower bound on dwell for starts not seen (the tracer's start).
  public let tracingSince: UInt64

  public init(tracingSince: UInt64) {
    self.tracingSince = tracingSince
  }

  public var count: Int { pending.count }
  /// Namespaces with orphans to reconcile: the ones worth a dump.
  public var namespaces: Set<UInt32> { Set(pending.keys.map(\.netns)) }

  /// Each followed orphan's record (as handed over) and FIN_WAIT2 start.
  public func forEachFollowed(_ body: (Record, UInt64?) -> Void) {
    for p in pending.values { body(p.record, p.enteredAt) }
  }

  /// Whether the orphan on these endpoints is followed: a dump keeps only
  /// those sockets, not the namespace's whole TIME_WAIT population.
  public func isFollowing(netns: UInt32, endpoints: Endpoints) -> Bool {
    pending[Key(netns: netns, endpoints: endpoints)] != nil
  }

  /// Starts following a `timewait_orphan` record.
  public mutating func follow(
    _ record: Record, enteredAt: UInt64?, handedOverAt: UInt64, deadline: UInt64? = nil,
    startIsLowerBound: Bool = false, emit: (Record) -> Void
  ) {
    let key = Key(netns: record.connection.netns, endpoints: record.connection.endpoints)
    // One hash on the usual path (a 4-tuple not followed yet).
    let followed = Pending(
      record: record, enteredAt: enteredAt, startIsLowerBound: startIsLowerBound, handedOverAt: handedOverAt,
      deadline: deadline, seen: deadline != nil)
    guard let replaced = pending.updateValue(followed, forKey: key) else { return }
    if replaced.startIsLowerBound && handedOverAt <= replaced.handedOverAt {
      // Listed at start and reported by the tracepoint too (it was handed
      // over just before): one connection, and the tracepoint knows more.
      if deadline == nil, let earlier = replaced.deadline, let i = pending.index(forKey: key) {
        pending.values[i].deadline = earlier
        pending.values[i].seen = true
      }
    } else {
      // A new connection took the 4-tuple over (tcp_tw_reuse kills the
      // timewait socket): the older one's end cannot be known; say so.
      emit(replaced.record)
    }
  }

  /// The local peer closed: its FIN reached the timewait socket at once.
  /// Returns false if no orphan of that connection is followed.
  @discardableResult
  public mutating func peerClosed(_ event: Event, emit: (Record) -> Void) -> Bool {
    let key = Key(netns: event.connection.netns, endpoints: event.connection.endpoints)
    guard let p = pending.removeValue(forKey: key), let peer = event.peer else { return false }
    var record = p.record
    record.peer = (record.peer ?? peer).merged(with: peer)
    end(p, as: .peerFin, at: peer.closedAt ?? event.timestamp, record: record, emit: emit)
    return true
  }

  /// Applies one dump of `netns` taken at `now`. `finTimeout` is the
  /// namespace's tcp_fin_timeout: the deadline of orphans never seen.
  public mutating func observe(
    netns: UInt32, sockets: [DiagSocket], at now: UInt64, finTimeout: UInt64?, emit: (Record) -> Void
  ) {
    var byEndpoints: [Endpoints: DiagSocket] = [:]
    for s in sockets where s.isTimewait { byEndpoints[s.endpoints] = s }
    for (key, var p) in pending where key.netns == netns {
      if let s = byEndpoints[key.endpoints] {
        let remaining = UInt64(s.expiresMilliseconds) * 1_000_000
        if s.state == .timeWait {
          // Re-armed to TIME_WAIT_LEN when the peer's FIN arrived.
          let finAt = now - min(now, Self.timeWaitLength - min(remaining, Self.timeWaitLength))
          pending.removeValue(forKey: key)
          end(p, as: .peerFin, at: max(finAt, p.handedOverAt), record: p.record, emit: emit)
        } else if !p.seen || p.misses > 0 {
          // The deadline does not move: reading it once is enough.
          p.deadline = now + remaining
          p.seen = true
          p.misses = 0
          pending[key] = p
        }
        continue
      }
      p.misses += 1
      guard p.misses >= Self.missesToConclude else {
        pending[key] = p
        continue
      }
      let expected = p.deadline ?? finTimeout.map { p.handedOverAt + $0 }
      if let expected, now + Self.deadlineSlack >= expected {
        pending.removeValue(forKey: key)
        end(p, as: .timeout, at: expected, record: p.record, emit: emit)
      } else if p.seen {
        // Gone well before its deadline: an RST killed the timewait socket.
        pending.removeValue(forKey: key)
        end(p, as: .reset, at: now, record: p.record, emit: emit)
      } else if now >= p.handedOverAt + Self.deadlineSlack {
        // Never seen in timewait (e.g. the timewait table overflowed): its end
        // is unknown; say so rather than guess.
        pending.removeValue(forKey: key)
        var record = p.record
        record.timestamp = now
        emit(record)
      }
    }
  }

  /// Orphans still in timewait when finwait stops: `tracer_exit`, with the
  /// deadline the kernel set where it was seen.
  public mutating func finish(at now: UInt64, emit: (Record) -> Void) {
    for p in pending.values.sorted(by: { $0.handedOverAt < $1.handedOverAt }) {
      var record = p.record
      record.timestamp = now
      record.end = .tracerExit
      record.deadline = p.deadline
      record.dwell = .atLeast(now - min(now, p.enteredAt ?? tracingSince))
      emit(record)
    }
    pending.removeAll()
  }

  private func end(_ p: Pending, as end: End, at time: UInt64, record: Record, emit: (Record) -> Void) {
    var r = record
    r.end(end, at: time)
    if let entered = p.enteredAt {
      let spent = time - min(time, entered)
      r.dwell = p.startIsLowerBound ? .atLeast(spent) : .exact(spent)
    } else {
      r.dwell = .atLeast(time - min(time, tracingSince))
    }
    emit(r)
  }
}

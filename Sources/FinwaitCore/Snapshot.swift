/// Connections already in FIN_WAIT2 when finwait looked: what `finwait
/// snapshot` prints and what tracing starts from.
public enum Snapshot {
  /// One namespace's dump: FIN_WAIT2 (full and timewait) and CLOSE_WAIT sockets.
  public struct Dump: Sendable {
    public var netns: UInt32
    public var sockets: [DiagSocket]
    /// The namespace's tcp_fin_timeout: how long timewait orphans were given.
    public var finTimeout: UInt64?

    public init(netns: UInt32, sockets: [DiagSocket], finTimeout: UInt64?) {
      self.netns = netns
      self.sockets = sockets
      self.finTimeout = finTimeout
    }
  }

  /// `existing` records, oldest first. Dwell is a lower bound: for a full
  /// socket the time since the last ACK arrived (the ACK of our FIN, unless
  /// the peer kept sending); for a timewait orphan the namespace's fin timeout
  /// minus the time left (assumes no TCP_LINGER2 shortened it).
  public static func records(
    _ dumps: [Dump], owner: (UInt32) -> Owner?, now: UInt64
  ) -> [Record] {
    var closeWait: [Endpoints: [(netns: UInt32, socket: DiagSocket)]] = [:]
    for dump in dumps {
      for s in dump.sockets where s.state == .closeWait { closeWait[s.endpoints, default: []].append((dump.netns, s)) }
    }
    /// A loopback peer lives in the same namespace; others may be anywhere on the node.
    func peerSocket(of endpoints: Endpoints, in netns: UInt32) -> (netns: UInt32, socket: DiagSocket)? {
      let candidates = closeWait[endpoints.reversed] ?? []
      if endpoints.remote.isLoopback { return candidates.first { $0.netns == netns } }
      return candidates.first { $0.netns == netns } ?? candidates.first
    }
    var records: [Record] = []
    for dump in dumps {
      for s in dump.sockets where s.state == .finWait2 {
        let orphaned = s.inode == 0
        var lowerBound: UInt64 = 0
        var deadline: UInt64?
        if s.isTimewait {
          let remaining = UInt64(s.expiresMilliseconds) * 1_000_000
          deadline = now + remaining
          lowerBound = timewaitOrphanDwell(left: remaining, finTimeout: dump.finTimeout)
        } else if let lastAck = s.lastAckReceivedMilliseconds {
          lowerBound = UInt64(lastAck) * 1_000_000
        }
        let connection = Connection(
          socket: 0, owner: owner(s.inode), endpoints: s.endpoints, path: .unknown, syscall: .unknown,
          syscallNumber: -1, orphanedAtEntry: orphaned, netns: dump.netns)
        var peer: Peer?
        if let p = peerSocket(of: s.endpoints, in: dump.netns) {
          let age = UInt64(p.socket.lastAckReceivedMilliseconds ?? 0) * 1_000_000
          peer = Peer(netns: p.netns, closeWaitSince: now - min(now, age), owner: owner(p.socket.inode))
        }
        records.append(Record(
          kind: .existing, timestamp: now, connection: connection, orphaned: orphaned,
          dwell: .atLeast(lowerBound), end: nil, peer: peer, deadline: deadline))
      }
    }
    return records.sorted { $0.dwell.knownNanoseconds > $1.dwell.knownNanoseconds }
  }
}

extension Snapshot {
  /// TCP_TIMEWAIT_LEN: an orphan whose fin timeout is longer first stays a
  /// full socket for the difference (tcp_close, tcp_rcv_state_process).
  static let timewaitLength: UInt64 = 60_000_000_000

  /// How long an orphan spends as a timewait socket in FIN_WAIT2: the fin
  /// timeout, or above 60 s the fin timeout minus 60 s, after as long again as
  /// a full socket (tcp_keepalive_timer).
  public static func timewaitPhase(finTimeout fin: UInt64) -> UInt64 {
    fin > timewaitLength ? fin - timewaitLength : fin
  }

  /// A timewait orphan's FIN_WAIT2 so far, at least, with `left` on its timer:
  /// 0 when the fin timeout is unknown or cannot have set that timer (a
  /// TCP_LINGER2 longer than it did). Assumes no shorter TCP_LINGER2.
  public static func timewaitOrphanDwell(left: UInt64, finTimeout fin: UInt64?) -> UInt64 {
    guard let fin else { return 0 }
    let phase = timewaitPhase(finTimeout: fin)
    guard left <= phase else { return 0 }
    return (fin > timewaitLength ? fin - timewaitLength : 0) + (phase - left)
  }
}

extension Endpoints {
  /// The same connection as its other end sees it.
  public var reversed: Endpoints {
    Endpoints(local: remote, localPort: remotePort, remote: local, remotePort: localPort)
  }
}

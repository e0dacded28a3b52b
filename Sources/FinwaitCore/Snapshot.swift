/// Connections already in FIN_WAIT2 when finwait looked: what `finwait
/// snapshot` prints and what tracing starts from.
public enum Snapshot {
  /// What a snapshot keeps of a FIN_WAIT2 or CLOSE_WAIT socket: no tcp_info,
  /// a fraction of a `DiagSocket`, for the 100,000s a busy node can have.
  public struct Socket: Sendable {
    public var endpoints: Endpoints
    public var inode: UInt32
    public var expiresMilliseconds: UInt32
    /// UInt32.max: not reported (timewait sockets have no tcp_info).
    var lastAck: UInt32
    public var isCloseWait: Bool
    public var isTimewait: Bool

    /// nil for a socket in any other state.
    public init?(_ s: DiagSocket) {
      guard s.state == .finWait2 || s.state == .closeWait else { return nil }
      endpoints = s.endpoints
      inode = s.inode
      expiresMilliseconds = s.expiresMilliseconds
      lastAck = s.lastAckReceivedMilliseconds.map { min($0, UInt32.max - 1) } ?? UInt32.max
      isCloseWait = s.state == .closeWait
      isTimewait = s.isTimewait
    }

    public var lastAckReceivedMilliseconds: UInt32? { lastAck == UInt32.max ? nil : lastAck }
  }

  /// One namespace's dump: FIN_WAIT2 (full and timewait) and CLOSE_WAIT sockets.
  public struct Dump: Sendable {
    public var netns: UInt32
    public private(set) var sockets = SocketList()
    /// The namespace's tcp_fin_timeout: how long timewait orphans were given.
    public var finTimeout: UInt64?

    public init(netns: UInt32, sockets: [DiagSocket] = [], finTimeout: UInt64?) {
      self.netns = netns
      self.finTimeout = finTimeout
      for socket in sockets { add(socket) }
    }

    /// Keeps a FIN_WAIT2 or CLOSE_WAIT socket; any other is not kept.
    public mutating func add(_ socket: DiagSocket) {
      if let kept = Socket(socket) { sockets.append(kept) }
    }
  }

  /// Sockets in chunks of 4,096: a dump of 100,000s grows without the copy
  /// an array makes when it doubles, which would raise the snapshot's peak.
  public struct SocketList: RandomAccessCollection, Sendable {
    private static let shift = 12
    private var chunks: [[Socket]] = []
    public private(set) var count = 0

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public subscript(i: Int) -> Socket {
      chunks[i >> Self.shift][i & (1 << Self.shift - 1)]
    }

    mutating func append(_ socket: Socket) {
      if count & (1 << Self.shift - 1) == 0 {
        chunks.append([])
        chunks[chunks.count - 1].reserveCapacity(1 << Self.shift)
      }
      chunks[chunks.count - 1].append(socket)
      count += 1
    }
  }

  /// A local peer in CLOSE_WAIT, as matching needs it.
  struct PeerSocket {
    var netns: UInt32
    var inode: UInt32
    var lastAckReceivedMilliseconds: UInt32?
  }

  /// CLOSE_WAIT sockets by endpoints, as indices into the dumps, keyed by a
  /// digest: a few words a socket, not a dictionary entry holding `Endpoints`.
  /// The same endpoints in several namespaces (pods), and digest collisions,
  /// chain.
  struct PeerTable {
    private let dumps: [Dump]
    /// By digest of the endpoints: the newest of its chain in `links`.
    private var heads: [UInt64: UInt32] = [:]
    private var links: [(dump: UInt32, socket: UInt32, next: UInt32)] = []
    private static let end = UInt32.max

    init(_ dumps: [Dump]) {
      self.dumps = dumps
      for (d, dump) in dumps.enumerated() {
        for (i, s) in dump.sockets.enumerated() where s.isCloseWait {
          let key = s.endpoints.digest(in: 0)
          links.append((UInt32(d), UInt32(i), heads[key] ?? Self.end))
          heads[key] = UInt32(links.count - 1)
        }
      }
    }

    /// The peer of a connection with `endpoints` in `netns`: a loopback
    /// peer lives in the same namespace; others may be anywhere on the node.
    /// Of several, the first dumped (chains run newest first).
    func peer(of endpoints: Endpoints, in netns: UInt32) -> PeerSocket? {
      let reversed = endpoints.reversed
      var at = heads[reversed.digest(in: 0)] ?? Self.end
      var first: PeerSocket?, sameNamespace: PeerSocket?
      while at != Self.end {
        let link = links[Int(at)]
        let dump = dumps[Int(link.dump)]
        let s = dump.sockets[Int(link.socket)]
        if s.endpoints == reversed {
          let peer = PeerSocket(netns: dump.netns, inode: s.inode, lastAckReceivedMilliseconds: s.lastAckReceivedMilliseconds)
          first = peer
          if dump.netns == netns { sameNamespace = peer }
        }
        at = link.next
      }
      return sameNamespace ?? (endpoints.remote.isLoopback ? nil : first)
    }
  }

  /// `existing` records, oldest first. Dwell is a lower bound: for a full
  /// socket the time since the last ACK arrived (the ACK of our FIN, unless
  /// the peer kept sending); for a timewait orphan the namespace's fin timeout
  /// minus the time left (assumes no TCP_LINGER2 shortened it).
  public static func records(
    _ dumps: [Dump], owner: (UInt32) -> Owner?, now: UInt64
  ) -> [Record] {
    var records: [Record] = []
    forEachRecord(dumps, owner: owner, now: now) { records.append($0) }
    return records
  }

  /// As `records`, one at a time: a `Record` (440 bytes) is made as it is
  /// handed over, never all of them at once.
  public static func forEachRecord<E: Error>(
    _ dumps: [Dump], owner: (UInt32) -> Owner?, now: UInt64, _ body: (Record) throws(E) -> Void
  ) throws(E) {
    let peers = PeerTable(dumps)
    var order: [(dwell: UInt64, dump: UInt32, socket: UInt32)] = []
    for (d, dump) in dumps.enumerated() {
      for (i, s) in dump.sockets.enumerated() where !s.isCloseWait {
        order.append((dwellLowerBound(s, finTimeout: dump.finTimeout), UInt32(d), UInt32(i)))
      }
    }
    order.sort { $0.dwell != $1.dwell ? $0.dwell > $1.dwell : ($0.dump, $0.socket) < ($1.dump, $1.socket) }
    for entry in order {
      let dump = dumps[Int(entry.dump)]
      let s = dump.sockets[Int(entry.socket)]
      let orphaned = s.inode == 0
      let connection = Connection(
        socket: 0, owner: owner(s.inode), endpoints: s.endpoints, path: .unknown, syscall: .unknown,
        syscallNumber: -1, orphanedAtEntry: orphaned, netns: dump.netns)
      var peer: Peer?
      if let p = peers.peer(of: s.endpoints, in: dump.netns) {
        let age = UInt64(p.lastAckReceivedMilliseconds ?? 0) * 1_000_000
        peer = Peer(netns: p.netns, closeWaitSince: now - min(now, age), owner: owner(p.inode))
      }
      try body(Record(
        kind: .existing, timestamp: now, connection: connection, orphaned: orphaned,
        dwell: .atLeast(entry.dwell), end: nil, peer: peer,
        deadline: s.isTimewait ? now + UInt64(s.expiresMilliseconds) * 1_000_000 : nil))
    }
  }

  static func dwellLowerBound(_ s: Socket, finTimeout: UInt64?) -> UInt64 {
    if s.isTimewait {
      return timewaitOrphanDwell(left: UInt64(s.expiresMilliseconds) * 1_000_000, finTimeout: finTimeout)
    }
    return s.lastAckReceivedMilliseconds.map { UInt64($0) * 1_000_000 } ?? 0
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

import CFinwaitEvent

/// `finwait doctor`: for every connection in FIN_WAIT2 (and every CLOSE_WAIT
/// socket) on the node, why it is still there, whom to blame and what to
/// change. Each verdict follows from what the kernel reports (sock_diag,
/// tcp_info, the socket's own settings, conntrack), never from a guess; the
/// rules are here, the reading is FinwaitTracing's (`DoctorLookups`).
public enum Doctor {
  /// Data from the peer this recently means it is still sending: the half-close is in use.
  public static let activeWindow: UInt64 = 10_000_000_000

  /// Why a connection is in the state it is in.
  public enum Verdict: String, Sendable, CaseIterable, Comparable {
    /// A local program holds the other end in CLOSE_WAIT: it never closed.
    case peerCloseWait = "peer_close_wait"
    /// Our side shut down and kept the socket; no kernel timer applies.
    case attachedAfterShutdown = "attached_after_shutdown"
    /// A CLOSE_WAIT socket whose other end is not on this node: this program never closed.
    case closeWait = "close_wait"
    /// Keepalive probes go unanswered: the kernel will reset it.
    case peerUnresponsive = "peer_unresponsive"
    /// Orphaned: the kernel frees it at a known deadline.
    case orphaned
    /// The peer is still sending after our FIN: a half-close in use, not a leak.
    case halfClose = "half_close"

    public var severity: Severity {
      switch self {
      case .peerCloseWait, .attachedAfterShutdown, .closeWait: .leak
      case .peerUnresponsive, .orphaned: .bounded
      case .halfClose: .healthy
      }
    }

    /// Declaration order is urgency order.
    public static func < (a: Verdict, b: Verdict) -> Bool {
      allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
  }

  public enum Severity: String, Sendable, Comparable {
    /// Nothing in the kernel will ever free it.
    case leak
    /// The kernel frees it at a known time.
    case bounded
    /// Working as intended.
    case healthy

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
    var rank: Int { self == .leak ? 0 : self == .bounded ? 1 : 2 }
  }
}

/// A network namespace's TCP sysctls that decide when a FIN_WAIT2 or idle
/// connection ends (net.ipv4.*, per namespace since Linux 4.13).
public struct TCPSysctls: Sendable, Equatable {
  /// The files under /proc/sys/net/ipv4, one place.
  public enum Name: String, Sendable, CaseIterable {
    case finTimeout = "tcp_fin_timeout"
    case keepaliveTime = "tcp_keepalive_time"
    case keepaliveInterval = "tcp_keepalive_intvl"
    case keepaliveProbes = "tcp_keepalive_probes"
  }

  public var finTimeout: UInt64?
  public var keepaliveTime: UInt64?
  public var keepaliveInterval: UInt64?
  public var keepaliveProbes: UInt32?

  public init(finTimeout: UInt64? = nil, keepaliveTime: UInt64? = nil, keepaliveInterval: UInt64? = nil,
              keepaliveProbes: UInt32? = nil) {
    self.finTimeout = finTimeout
    self.keepaliveTime = keepaliveTime
    self.keepaliveInterval = keepaliveInterval
    self.keepaliveProbes = keepaliveProbes
  }

  /// From each file's text (seconds, or a count for probes); unreadable ones stay nil.
  public init(reading text: (Name) -> String?) {
    func seconds(_ name: Name) -> UInt64? {
      text(name).flatMap(ProcText.finTimeoutSeconds(fromSysctl:)).flatMap { $0 >= 0 ? UInt64($0) * 1_000_000_000 : nil }
    }
    self.init(
      finTimeout: seconds(.finTimeout), keepaliveTime: seconds(.keepaliveTime),
      keepaliveInterval: seconds(.keepaliveInterval),
      keepaliveProbes: text(.keepaliveProbes).flatMap(ProcText.finTimeoutSeconds(fromSysctl:))
        .flatMap { $0 >= 0 ? UInt32($0) : nil })
  }
}

/// A socket's local peer or conntrack entry, and the facts the doctor needs
/// that only I/O can give: what `finwait doctor` reads, behind one seam.
public protocol DoctorLookups {
  func owner(ofInode inode: UInt32) -> Owner?
  /// The owner's pod or container, as labels (empty on the host).
  func labels(of owner: Owner) -> OwnerLabels
  /// The socket's own setsockopt values; nil when they cannot be read.
  func settings(netns: UInt32, endpoints: Endpoints) -> SocketSettings?
  /// The conntrack entry of the connection, searched in `netns` then the node's.
  func conntrack(netns: UInt32, endpoints: Endpoints) -> ConntrackMatch?
  func program(of owner: Owner) -> KnownProgram?
  /// What a finwait tracer running on the node saw of the connection; nil
  /// when none runs or it did not see this one.
  func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose?
}

extension DoctorLookups {
  public func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose? { nil }
}

/// What a finwait tracer running on the node (`finwait trace`, `serve`, ...)
/// saw of a connection still in FIN_WAIT2: the code path and syscall that
/// sent its FIN, who made it, when FIN_WAIT2 began and, when that tracer
/// runs with `--stack`, the call site.
public struct TracedClose: Sendable, Equatable {
  public var path: Path
  public var syscall: Syscall
  /// The process in that syscall; nil when the tracer did not see FIN_WAIT1.
  public var closer: Owner?
  /// CLOCK_MONOTONIC: when FIN_WAIT2 began, as the tracer saw it; nil when
  /// it was not seen (inferred when the tracer started).
  public var finWait2At: UInt64?
  public var stack: CallStack?

  public init(path: Path, syscall: Syscall, closer: Owner?, finWait2At: UInt64?, stack: CallStack? = nil) {
    self.path = path
    self.syscall = syscall
    self.closer = closer
    self.finWait2At = finWait2At
    self.stack = stack
  }

  /// From a tracer's per-socket map entry (`fw_event` as stored); nil for an
  /// entry that does not decode. An entry whose FIN_WAIT2 the tracer did not
  /// see (a skipped run) still tells how the FIN was sent, with no start.
  public init?(entry: fw_event) {
    guard let event = try? Event(mapEntry: entry) else { return nil }
    self.init(path: event.connection.path, syscall: event.connection.syscall, closer: event.connection.owner,
              finWait2At: event.finWait2Inferred ? nil : event.finWait2At)
  }
}

public struct ConntrackMatch: Sendable, Equatable {
  public var netns: UInt32
  public var entry: ConntrackEntry

  public init(netns: UInt32, entry: ConntrackEntry) {
    self.netns = netns
    self.entry = entry
  }

  public var isNAT: Bool { entry.isDNAT || entry.isSNAT }
}

/// What the doctor was given: every dumped socket, and each namespace's sysctls.
public struct DoctorInput: Sendable {
  public var now: UInt64
  /// The node's own network namespace (PID 1's).
  public var nodeNetns: UInt32
  public var sysctls: [UInt32: TCPSysctls]
  /// FIN_WAIT2 and CLOSE_WAIT sockets (full and timewait), per namespace.
  public var dumps: [(netns: UInt32, sockets: [DiagSocket])]

  public init(now: UInt64, nodeNetns: UInt32, sysctls: [UInt32: TCPSysctls],
              dumps: [(netns: UInt32, sockets: [DiagSocket])]) {
    self.now = now
    self.nodeNetns = nodeNetns
    self.sysctls = sysctls
    self.dumps = dumps
  }
}

/// One socket, diagnosed.
public struct Finding: Sendable, Equatable {
  public struct LocalPeer: Sendable, Equatable {
    public var netns: UInt32
    public var socket: DiagSocket
    public var owner: Owner?
    public var labels: OwnerLabels?
    /// Found through a conntrack entry (a NAT between the two ends), not by
    /// reversing the endpoints.
    public var viaNAT: Bool
    /// Lower bound of its time in CLOSE_WAIT (since the last ACK it received).
    public var closeWaitAtLeast: UInt64?
  }

  /// What ends the connection without anyone's help, and when.
  public struct Deadline: Sendable, Equatable {
    public enum Cause: String, Sendable {
      /// The namespace's net.ipv4.tcp_fin_timeout.
      case finTimeout = "fin_timeout"
      /// TCP_LINGER2 on the socket.
      case linger2
      /// Keepalive probes unanswered (or TCP_USER_TIMEOUT with them).
      case keepalive
    }
    /// Nanoseconds from now.
    public var after: UInt64
    public var cause: Cause
    /// It ends by then at the latest (an orphan: the peer's FIN may end it
    /// sooner). False for keepalive: the reset comes then only if the peer
    /// stays silent, and an answer to a probe puts it off.
    public var atMost: Bool
  }

  public var netns: UInt32
  public var socket: DiagSocket
  public var owner: Owner?
  public var labels: OwnerLabels?
  public var orphaned: Bool
  /// The time in this state: a lower bound, or exact when `dwellExact`.
  public var dwellAtLeast: UInt64
  /// A running tracer saw FIN_WAIT2 begin: `dwellAtLeast` is the dwell itself.
  public var dwellExact = false
  public var peer: LocalPeer?
  public var deadline: Deadline?
  public var settings: SocketSettings?
  public var conntrack: ConntrackMatch?
  /// The NAT entry expires before the connection can end: a late FIN or RST
  /// would not be translated and is dropped.
  public var conntrackExpiresFirst: Bool
  public var verdict: Doctor.Verdict
  /// Keepalive is armed (the socket's SO_KEEPALIVE, or a keepalive timer seen).
  public var keepaliveArmed: Bool
  /// How a FIN_WAIT2 socket got there. Attached: shutdown(SHUT_WR) or
  /// shutdown(SHUT_RDWR), told apart by its receive side (no FIN came in),
  /// else what a running tracer saw; orphans: what a running tracer saw
  /// (close, exit, ...). nil for CLOSE_WAIT, and when neither is known.
  public var path: Path?
  /// What a finwait tracer running on the node saw (`TracedClose`).
  public var traced: TracedClose?
}

/// Connections with one verdict and one culprit.
public struct DiagnosisGroup: Sendable, Equatable {
  public var verdict: Doctor.Verdict
  /// Who must change something: the peer for `peer_close_wait`, the owner
  /// otherwise; nil for orphans (no process holds them).
  public var culprit: Owner?
  public var labels: OwnerLabels?
  /// The culprit, when it is a program whose own settings govern this (not for healthy groups).
  public var program: KnownProgram?

  /// Which side of the half-close the culprit holds.
  public var situation: KnownProgram.Situation {
    verdict == .peerCloseWait || verdict == .closeWait ? .holdsCloseWait : .holdsFinWait2
  }
  public var findings: [Finding]

  public var severity: Doctor.Severity { verdict.severity }
  public var oldest: UInt64 { findings.map(\.dwellAtLeast).max() ?? 0 }
  /// For orphans: the namespace they are in (no culprit).
  public var netns: UInt32 { findings.first?.netns ?? 0 }
}

public struct Diagnosis: Sendable, Equatable {
  public var now: UInt64
  public var nodeNetns: UInt32
  public var sysctls: [UInt32: TCPSysctls]
  public var groups: [DiagnosisGroup]
  public var finWait2: Int
  public var closeWait: Int
  /// Namespaces whose sockets were read.
  public var namespaces: Int

  public var node: TCPSysctls { sysctls[nodeNetns] ?? TCPSysctls() }
}

extension Doctor {
  /// Diagnoses every FIN_WAIT2 socket and every CLOSE_WAIT socket in `input`,
  /// keeps those `filter` accepts (by either end's owner), and groups them.
  public static func diagnose(_ input: DoctorInput, lookups: some DoctorLookups,
                              filter: KernelConfig = KernelConfig()) -> Diagnosis {
    var byEndpoints: [Endpoints: [(netns: UInt32, socket: DiagSocket)]] = [:]
    for dump in input.dumps {
      for s in dump.sockets where s.state == .closeWait { byEndpoints[s.endpoints, default: []].append((dump.netns, s)) }
    }
    // Each finding goes straight to its group: 10,000s of them are never held twice.
    var groups = Grouper()
    var peersOfFinWait2: Set<SocketKey> = []
    var finWait2 = 0, closeWait = 0
    for dump in input.dumps {
      for s in dump.sockets where s.state == .finWait2 {
        finWait2 += 1
        let finding = diagnoseFinWait2(s, netns: dump.netns, input: input, closeWait: byEndpoints, lookups: lookups)
        if let peer = finding.peer { peersOfFinWait2.insert(SocketKey(netns: peer.netns, endpoints: peer.socket.endpoints)) }
        if matches(finding, filter) { groups.add(finding, lookups: lookups) }
      }
    }
    for dump in input.dumps {
      for s in dump.sockets where s.state == .closeWait {
        closeWait += 1
        guard !peersOfFinWait2.contains(SocketKey(netns: dump.netns, endpoints: s.endpoints)) else { continue }
        let finding = diagnoseCloseWait(s, netns: dump.netns, input: input, lookups: lookups)
        if matches(finding, filter) { groups.add(finding, lookups: lookups) }
      }
    }
    return Diagnosis(
      now: input.now, nodeNetns: input.nodeNetns, sysctls: input.sysctls, groups: groups.sorted(),
      finWait2: finWait2, closeWait: closeWait, namespaces: input.dumps.count)
  }

  struct SocketKey: Hashable {
    var netns: UInt32
    var endpoints: Endpoints
  }

  static func diagnoseFinWait2(
    _ s: DiagSocket, netns: UInt32, input: DoctorInput,
    closeWait: [Endpoints: [(netns: UInt32, socket: DiagSocket)]], lookups: some DoctorLookups
  ) -> Finding {
    let sysctls = input.sysctls[netns] ?? TCPSysctls()
    let owner = s.inode != 0 ? lookups.owner(ofInode: s.inode) : nil
    let orphaned = s.inode == 0
    let settings = s.isTimewait ? nil : lookups.settings(netns: netns, endpoints: s.endpoints)
    // The local peer: the same endpoints reversed (loopback stays in its
    // namespace), else the real other end that a conntrack entry names.
    var peer: Finding.LocalPeer?
    func localPeer(_ endpoints: Endpoints, viaNAT: Bool) -> Finding.LocalPeer? {
      let candidates = closeWait[endpoints] ?? []
      let found = endpoints.remote.isLoopback && !viaNAT
        ? candidates.first { $0.netns == netns } : candidates.first { $0.netns == netns } ?? candidates.first
      guard let found else { return nil }
      let peerOwner = found.socket.inode != 0 ? lookups.owner(ofInode: found.socket.inode) : nil
      return Finding.LocalPeer(
        netns: found.netns, socket: found.socket, owner: peerOwner, labels: peerOwner.map(lookups.labels(of:)),
        viaNAT: viaNAT, closeWaitAtLeast: found.socket.lastAckReceivedMilliseconds.map { UInt64($0) * 1_000_000 })
    }
    peer = localPeer(s.endpoints.reversed, viaNAT: false)
    var conntrack: ConntrackMatch?
    if !s.endpoints.remote.isLoopback {
      conntrack = lookups.conntrack(netns: netns, endpoints: s.endpoints)
      if peer == nil, let match = conntrack, match.isNAT, let other = match.entry.peerEndpoints(of: s.endpoints) {
        peer = localPeer(other, viaNAT: true)
      }
    }
    // A timewait orphan left the tracer's map at its handoff.
    let traced = s.isTimewait ? nil : lookups.traced(netns: netns, endpoints: s.endpoints)
    var dwell: UInt64 = 0
    var exact = false
    if let since = traced?.finWait2At, since <= input.now {
      dwell = input.now - since
      exact = true
    } else if s.isTimewait {
      dwell = Snapshot.timewaitOrphanDwell(left: UInt64(s.expiresMilliseconds) * 1_000_000, finTimeout: sysctls.finTimeout)
    } else if let lastAck = s.lastAckReceivedMilliseconds {
      dwell = UInt64(lastAck) * 1_000_000
    }
    let keepaliveArmed = settings?.keepalive ?? (s.timerKind == .keepalive && !orphaned)
    let deadline = orphaned
      ? orphanDeadline(s, sysctls: sysctls, settings: settings)
      : keepaliveDeadline(s, sysctls: sysctls, settings: settings)
    let verdict: Verdict
    // An orphan cannot receive (data for it draws a RST): only an attached
    // socket's peer can still be sending, and then the peer's CLOSE_WAIT is in use too.
    if !orphaned, let tcp = s.tcp, tcp.bytesReceived ?? 1 > 0,
       UInt64(tcp.lastDataReceivedMilliseconds) * 1_000_000 <= activeWindow {
      verdict = .halfClose
    } else if peer != nil {
      verdict = .peerCloseWait
    } else if orphaned {
      verdict = .orphaned
    } else if keepaliveArmed, probesUnanswered(s) >= 2 {
      // An ACK resets the count: a second probe goes out only after a whole
      // interval without an answer to the first. One probe out may just be in flight.
      verdict = .peerUnresponsive
    } else {
      verdict = .attachedAfterShutdown
    }
    // sk_shutdown is exact for an attached socket; a tracer's path (decided
    // from the syscall) also covers orphans and unread settings.
    let shutdownPath: Path? = orphaned ? nil
      : settings.map { $0.shutdown.contains(.receive) ? .shutdownReadWrite : .shutdownWrite }
    var finding = Finding(
      netns: netns, socket: s, owner: owner, labels: owner.map(lookups.labels(of:)), orphaned: orphaned,
      dwellAtLeast: dwell, peer: peer, deadline: deadline, settings: settings, conntrack: conntrack,
      conntrackExpiresFirst: expiresFirst(conntrack, deadline: deadline), verdict: verdict,
      keepaliveArmed: keepaliveArmed,
      path: shutdownPath ?? traced.flatMap { $0.path == .unknown ? nil : $0.path }, traced: traced)
    finding.dwellExact = exact
    return finding
  }

  static func diagnoseCloseWait(_ s: DiagSocket, netns: UInt32, input: DoctorInput,
                                lookups: some DoctorLookups) -> Finding {
    let sysctls = input.sysctls[netns] ?? TCPSysctls()
    let owner = s.inode != 0 ? lookups.owner(ofInode: s.inode) : nil
    let settings = lookups.settings(netns: netns, endpoints: s.endpoints)
    let conntrack = s.endpoints.remote.isLoopback ? nil : lookups.conntrack(netns: netns, endpoints: s.endpoints)
    let deadline = keepaliveDeadline(s, sysctls: sysctls, settings: settings)
    let keepaliveArmed = settings?.keepalive ?? (s.timerKind == .keepalive)
    // Still writing after the peer's FIN: the peer half-closed and waits for the rest.
    let sending = s.tcp.map { UInt64($0.lastDataSentMilliseconds) * 1_000_000 <= activeWindow } ?? false
    return Finding(
      netns: netns, socket: s, owner: owner, labels: owner.map(lookups.labels(of:)), orphaned: s.inode == 0,
      dwellAtLeast: UInt64(s.lastAckReceivedMilliseconds ?? 0) * 1_000_000, peer: nil, deadline: deadline,
      settings: settings, conntrack: conntrack, conntrackExpiresFirst: expiresFirst(conntrack, deadline: deadline),
      verdict: sending ? .halfClose : .closeWait, keepaliveArmed: keepaliveArmed, path: nil)
  }

  /// An orphan's end: a timewait socket's timer, or for a fin timeout above
  /// 60 s the full socket's keepalive timer, then a timewait socket for the
  /// fin timeout minus 60 s (tcp_keepalive_timer).
  static func orphanDeadline(_ s: DiagSocket, sysctls: TCPSysctls, settings: SocketSettings?)
    -> Finding.Deadline? {
    let left = UInt64(s.expiresMilliseconds) * 1_000_000
    if s.isTimewait {
      // Whether TCP_LINGER2 set it cannot be told from a timewait socket,
      // unless the time left exceeds what the namespace's fin timeout gives.
      let longer = sysctls.finTimeout.map { left > Snapshot.timewaitPhase(finTimeout: $0) } ?? false
      return Finding.Deadline(after: left, cause: longer ? .linger2 : .finTimeout, atMost: true)
    }
    guard s.timerKind == .keepalive else { return nil }
    var cause = Finding.Deadline.Cause.finTimeout
    var finTime = sysctls.finTimeout
    if case let .nanoseconds(ns)? = settings?.linger2 {
      cause = .linger2
      finTime = ns
    }
    guard let finTime else { return nil }
    return Finding.Deadline(after: left + (finTime > Snapshot.timewaitLength ? finTime - Snapshot.timewaitLength : 0), cause: cause,
                            atMost: true)
  }

  /// Keepalive probes out, from the dump (the same reading as its timer).
  static func probesUnanswered(_ s: DiagSocket) -> UInt8 {
    s.timerKind == .keepalive ? s.timerRetransmits : s.tcp?.probes ?? 0
  }

  /// When keepalive resets an attached socket whose peer stays silent: the
  /// timer fires at `expires`, then once per interval until the probes run
  /// out (tcp_keepalive_timer). A live peer answers and puts it off. Only
  /// with the socket's own settings: it may override the sysctls.
  static func keepaliveDeadline(_ s: DiagSocket, sysctls: TCPSysctls, settings: SocketSettings?)
    -> Finding.Deadline? {
    guard s.timerKind == .keepalive, let settings, settings.keepalive else { return nil }
    let interval = settings.keepaliveInterval ?? sysctls.keepaliveInterval
    let probes = settings.keepaliveProbes.map(UInt32.init) ?? sysctls.keepaliveProbes
    guard let interval, let probes else { return nil }
    let sent = UInt64(probesUnanswered(s))
    let expires = UInt64(s.expiresMilliseconds) * 1_000_000
    // The timer fires at `expires`, then every interval; at each firing it
    // resets the connection if, with TCP_USER_TIMEOUT, that long passed since
    // the peer was last heard and a probe is out, or else if the probes ran out.
    let firings: UInt64
    if settings.userTimeoutMilliseconds > 0 {
      let heard = UInt64(min(s.tcp?.lastAckReceivedMilliseconds ?? 0, s.tcp?.lastDataReceivedMilliseconds ?? 0)) * 1_000_000
      let timeout = UInt64(settings.userTimeoutMilliseconds) * 1_000_000
      let untilTimeout = timeout > heard + expires ? (timeout - heard - expires + interval - 1) / interval : 0
      firings = max(sent > 0 ? 0 : 1, untilTimeout)
    } else {
      firings = UInt64(probes) > sent ? UInt64(probes) - sent : 0
    }
    return Finding.Deadline(after: expires + firings * interval, cause: .keepalive, atMost: false)
  }

  /// A NAT'd connection whose conntrack entry ends before the connection can:
  /// never for one the kernel frees first.
  static func expiresFirst(_ match: ConntrackMatch?, deadline: Finding.Deadline?) -> Bool {
    guard let match, match.isNAT, let timeout = match.entry.timeoutSeconds else { return false }
    guard let deadline else { return true }
    return UInt64(timeout) * 1_000_000_000 < deadline.after
  }

  /// Every filter keeps a connection if either end matches: `--comm server`
  /// shows what the server leaves its clients waiting on.
  static func matches(_ f: Finding, _ filter: KernelConfig) -> Bool {
    if let netns = filter.netns, f.netns != netns && f.peer?.netns != netns { return false }
    let owners = [f.owner, f.peer?.owner].compactMap { $0 }
    if let pid = filter.pid, !owners.contains(where: { $0.pid == pid }) { return false }
    if let comm = filter.comm, !owners.contains(where: { $0.comm == comm }) { return false }
    let e = f.socket.endpoints
    if let port = filter.port, e.localPort != port && e.remotePort != port { return false }
    if let family = filter.family, (family == 4) != (e.local.family == .ipv4) { return false }
    return true
  }

  /// Groups by verdict and culprit (the pod when there is one, else the
  /// process; orphans by namespace); sorted most urgent first, then the
  /// biggest, then the oldest.
  struct Grouper {
    enum Culprit: Hashable {
      case pod(OwnerLabels)
      case process(UInt32)
      case namespace(UInt32)
    }

    struct Key: Hashable {
      var verdict: Verdict
      var culprit: Culprit
    }

    private var index: [Key: Int] = [:]
    private var groups: [DiagnosisGroup] = []

    mutating func add(_ f: Finding, lookups: some DoctorLookups) {
      let blamed = f.verdict == .peerCloseWait ? f.peer?.owner : f.owner
      let labels = f.verdict == .peerCloseWait ? f.peer?.labels : f.labels
      let culprit: Culprit
      if let labels, !labels.pod.isEmpty {
        culprit = .pod(OwnerLabels(namespace: labels.namespace, pod: labels.pod, container: labels.container))
      } else if let blamed {
        culprit = .process(blamed.pid)
      } else {
        culprit = .namespace(f.peer?.netns ?? f.netns)
      }
      let key = Key(verdict: f.verdict, culprit: culprit)
      if let i = index[key] {
        groups[i].findings.append(f)
        return
      }
      index[key] = groups.count
      groups.append(DiagnosisGroup(
        verdict: f.verdict, culprit: blamed, labels: labels,
        program: f.verdict.severity == .healthy ? nil : blamed.flatMap(lookups.program(of:)), findings: [f]))
    }

    consuming func sorted() -> [DiagnosisGroup] {
      var result = groups
      groups = []
      for i in result.indices { result[i].findings.sort { $0.dwellAtLeast > $1.dwellAtLeast } }
      result.sort {
        ($0.severity, $0.verdict, -$0.findings.count, UInt64.max - $0.oldest)
          < ($1.severity, $1.verdict, -$1.findings.count, UInt64.max - $1.oldest)
      }
      return result
    }
  }
}

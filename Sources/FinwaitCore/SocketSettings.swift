import CFinwaitEvent

/// What a process set on one TCP socket with setsockopt, as the kernel keeps
/// it (`struct fw_sock_settings`, written by bpf/sockets.bpf.c). sock_diag
/// reports none of it, yet it decides whether a socket in FIN_WAIT2 is ever
/// freed: an attached one only by keepalive or TCP_USER_TIMEOUT, an orphan
/// after TCP_LINGER2 or the namespace's tcp_fin_timeout.
public struct SocketSettings: Sendable, Equatable {
  /// TCP_LINGER2: how long an orphan may stay in FIN_WAIT2.
  public enum Linger2: Sendable, Equatable {
    /// Not set: the namespace's net.ipv4.tcp_fin_timeout.
    case `default`
    /// Negative: an orphan skips FIN_WAIT2 (reset at close, or once our FIN is ACKed).
    case off
    case nanoseconds(UInt64)
  }

  /// The socket's own view: local is this socket's address.
  public var endpoints: Endpoints
  public var state: DiagSocket.State
  /// 0 for orphans.
  public var inode: UInt64
  /// The socket cookie (SO_COOKIE, inet_diag's idiag_cookie); nil where the
  /// kernel cannot give it to an iterator (before Linux 5.12).
  public var cookie: UInt64?
  /// The network namespace's inode number.
  public var netns: UInt32
  /// SO_KEEPALIVE.
  public var keepalive: Bool
  /// TCP_KEEPIDLE in nanoseconds; nil: the namespace's tcp_keepalive_time.
  public var keepaliveIdle: UInt64?
  /// TCP_KEEPINTVL in nanoseconds; nil: the namespace's tcp_keepalive_intvl.
  public var keepaliveInterval: UInt64?
  /// TCP_KEEPCNT; nil: the namespace's tcp_keepalive_probes.
  public var keepaliveProbes: UInt8?
  public var linger2: Linger2
  /// TCP_USER_TIMEOUT; 0: none.
  public var userTimeoutMilliseconds: UInt32
  /// Keepalive (or zero-window) probes sent and not answered yet.
  public var probesOut: UInt8

  public init(
    endpoints: Endpoints, state: DiagSocket.State, inode: UInt64 = 0, cookie: UInt64? = nil, netns: UInt32 = 0,
    keepalive: Bool = false, keepaliveIdle: UInt64? = nil, keepaliveInterval: UInt64? = nil,
    keepaliveProbes: UInt8? = nil, linger2: Linger2 = .default, userTimeoutMilliseconds: UInt32 = 0,
    probesOut: UInt8 = 0
  ) {
    self.endpoints = endpoints
    self.state = state
    self.inode = inode
    self.cookie = cookie
    self.netns = netns
    self.keepalive = keepalive
    self.keepaliveIdle = keepaliveIdle
    self.keepaliveInterval = keepaliveInterval
    self.keepaliveProbes = keepaliveProbes
    self.linger2 = linger2
    self.userTimeoutMilliseconds = userTimeoutMilliseconds
    self.probesOut = probesOut
  }

  /// Bytes in one record.
  public static let recordSize = MemoryLayout<fw_sock_settings>.size

  /// Why a record could not be decoded.
  public enum DecodeError: Error, Equatable {
    case wrongLength(Int)
    case unknownFamily(UInt16)
    case unknownState(UInt8)
  }

  /// Decodes one record from the bytes an iterator read gave; exactly
  /// `recordSize` bytes.
  public init(record bytes: UnsafeRawBufferPointer) throws(DecodeError) {
    guard bytes.count == Self.recordSize else { throw .wrongLength(bytes.count) }
    try self.init(decoding: bytes.loadUnaligned(as: fw_sock_settings.self))
  }

  public init(decoding raw: borrowing fw_sock_settings) throws(DecodeError) {
    let family = raw.family
    guard let local = withUnsafeBytes(of: raw.saddr, { IPAddress(family: family, networkOrder: $0) }),
      let remote = withUnsafeBytes(of: raw.daddr, { IPAddress(family: family, networkOrder: $0) })
    else { throw .unknownFamily(family) }
    guard let state = DiagSocket.State(rawValue: raw.state) else { throw .unknownState(raw.state) }
    self.init(
      endpoints: Endpoints(local: local, localPort: raw.sport, remote: remote, remotePort: raw.dport),
      state: state, inode: raw.inode, cookie: raw.cookie == 0 ? nil : raw.cookie, netns: raw.netns,
      keepalive: raw.keepalive != 0,
      keepaliveIdle: raw.keepalive_time_ns == 0 ? nil : raw.keepalive_time_ns,
      keepaliveInterval: raw.keepalive_intvl_ns == 0 ? nil : raw.keepalive_intvl_ns,
      keepaliveProbes: raw.keepalive_probes == 0 ? nil : raw.keepalive_probes,
      linger2: raw.linger2_ns < 0 ? .off : raw.linger2_ns == 0 ? .default : .nanoseconds(UInt64(raw.linger2_ns)),
      userTimeoutMilliseconds: raw.user_timeout_ms, probesOut: raw.probes_out)
  }
}

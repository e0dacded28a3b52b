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
  /// Which sides shutdown() closed (sk_shutdown). For an attached socket in
  /// FIN_WAIT2, which has received no FIN, the receive side is shut only by
  /// shutdown(SHUT_RD or SHUT_RDWR): it tells SHUT_WR from SHUT_RDWR.
  public var shutdown: Shutdown

  /// sk_shutdown's bits.
  public struct Shutdown: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// RCV_SHUTDOWN
    public static let receive = Shutdown(rawValue: 1)
    /// SEND_SHUTDOWN
    public static let send = Shutdown(rawValue: 2)
  }

  public init(
    endpoints: Endpoints, state: DiagSocket.State, inode: UInt64 = 0, cookie: UInt64? = nil, netns: UInt32 = 0,
    keepalive: Bool = false, keepaliveIdle: UInt64? = nil, keepaliveInterval: UInt64? = nil,
    keepaliveProbes: UInt8? = nil, linger2: Linger2 = .default, userTimeoutMilliseconds: UInt32 = 0,
    probesOut: UInt8 = 0, shutdown: Shutdown = []
  ) {
    self.shutdown = shutdown
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
    /// The kernel's HZ is not known: times cannot be converted.
    case unknownHZ
  }

  /// Decodes one record from the bytes an iterator read gave; exactly
  /// `recordSize` bytes. `hz`: the kernel's jiffies per second.
  public init(record bytes: UnsafeRawBufferPointer, hz: UInt64) throws(DecodeError) {
    guard bytes.count == Self.recordSize else { throw .wrongLength(bytes.count) }
    try self.init(decoding: bytes.loadUnaligned(as: fw_sock_settings.self), hz: hz)
  }

  public init(decoding raw: borrowing fw_sock_settings, hz: UInt64) throws(DecodeError) {
    let family = raw.family
    guard let local = withUnsafeBytes(of: raw.saddr, { IPAddress(family: family, networkOrder: $0) }),
      let remote = withUnsafeBytes(of: raw.daddr, { IPAddress(family: family, networkOrder: $0) })
    else { throw .unknownFamily(family) }
    guard let state = DiagSocket.State(rawValue: raw.state) else { throw .unknownState(raw.state) }
    guard hz > 0 else { throw .unknownHZ }
    // jiffies * 1e9 first: exact for every HZ (300 does not divide 1e9). The
    // kernel's values are int jiffies (< 2^31), so the product fits.
    func ns(_ jiffies: UInt64) -> UInt64? {
      guard jiffies != 0 else { return nil }
      let (product, overflow) = jiffies.multipliedReportingOverflow(by: 1_000_000_000)
      return overflow ? .max : product / hz
    }
    self.init(
      endpoints: Endpoints(local: local, localPort: raw.sport, remote: remote, remotePort: raw.dport),
      state: state, inode: raw.inode, cookie: raw.cookie == 0 ? nil : raw.cookie, netns: raw.netns,
      keepalive: raw.keepalive != 0, keepaliveIdle: ns(raw.keepalive_time), keepaliveInterval: ns(raw.keepalive_intvl),
      keepaliveProbes: raw.keepalive_probes == 0 ? nil : raw.keepalive_probes,
      linger2: raw.linger2 < 0 ? .off : raw.linger2 == 0 ? .default : .nanoseconds(ns(UInt64(raw.linger2)) ?? 0),
      userTimeoutMilliseconds: raw.user_timeout_ms, probesOut: raw.probes_out,
      shutdown: Shutdown(rawValue: raw.shutdown & 3))
  }

  /// The kernel's HZ from a record and its namespace's tcp_keepalive_time in
  /// seconds (the sysctl shows jiffies / HZ); nil when that cannot tell it.
  public static func hz(keepaliveTimeJiffies jiffies: UInt32, keepaliveTimeSeconds seconds: UInt64) -> UInt64? {
    guard seconds > 0, jiffies > 0, UInt64(jiffies) % seconds == 0 else { return nil }
    let hz = UInt64(jiffies) / seconds
    // Linux allows 100, 250, 300 and 1000; anything else is a misreading.
    return [100, 250, 300, 1000].contains(hz) ? hz : nil
  }
}

/// One socket from a NETLINK_SOCK_DIAG (inet_diag) dump, as `ss` sees it.
public struct DiagSocket: Sendable, Equatable {
  public enum State: UInt8, Sendable {
    case established = 1, synSent, synRecv, finWait1, finWait2, timeWait, close, closeWait, lastAck,
      listen, closing, newSynRecv
  }

  public var state: State
  public var endpoints: Endpoints
  /// 0 for orphans and timewait sockets.
  public var inode: UInt32
  public var uid: UInt32
  /// inet_diag timer kind: 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero window probe.
  public var timer: UInt8
  /// Time left on that timer.
  public var expiresMilliseconds: UInt32
  /// From tcp_info (full sockets only): ms since the last ACK arrived. In
  /// FIN_WAIT2 the ACK of our FIN is the last one the peer sent, unless it
  /// kept sending data: a lower bound of the FIN_WAIT2 dwell.
  public var lastAckReceivedMilliseconds: UInt32?
  /// idiag_retrans: with the keepalive timer (2), keepalive probes sent and not
  /// answered; with the retransmit timer (1), retransmissions so far.
  public var timerRetransmits: UInt8
  /// idiag_rqueue: bytes received and not yet read by the application.
  public var receiveQueue: UInt32
  /// idiag_wqueue: bytes sent and not yet acknowledged.
  public var sendQueue: UInt32
  /// The whole tcp_info, when the kernel sent one (full sockets only).
  public var tcp: TCPInfo?

  public init(
    state: State, endpoints: Endpoints, inode: UInt32 = 0, uid: UInt32 = 0, timer: UInt8 = 0,
    expiresMilliseconds: UInt32 = 0, lastAckReceivedMilliseconds: UInt32? = nil, timerRetransmits: UInt8 = 0,
    receiveQueue: UInt32 = 0, sendQueue: UInt32 = 0, tcp: TCPInfo? = nil
  ) {
    self.timerRetransmits = timerRetransmits
    self.receiveQueue = receiveQueue
    self.sendQueue = sendQueue
    self.tcp = tcp
    self.state = state
    self.endpoints = endpoints
    self.inode = inode
    self.uid = uid
    self.timer = timer
    self.expiresMilliseconds = expiresMilliseconds
    self.lastAckReceivedMilliseconds = lastAckReceivedMilliseconds
  }

  /// A timewait mini-socket: no inode, TIME_WAIT timer; its state is the
  /// substate (FIN_WAIT2 until the peer's FIN, then TIME_WAIT).
  public var isTimewait: Bool { timer == 3 && inode == 0 && (state == .finWait2 || state == .timeWait) }

  /// inet_diag timer kinds (idiag_timer).
  public enum Timer: UInt8, Sendable {
    case none = 0, retransmit, keepalive, timewait, zeroWindowProbe
  }

  public var timerKind: Timer? { Timer(rawValue: timer) }
}

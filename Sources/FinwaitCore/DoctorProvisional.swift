// PROVISIONAL: the shapes helpers are building (conntrack, socket settings,
// known programs), so the doctor compiles meanwhile. Replaced on merge.

public enum ConntrackTCPState: UInt8, Sendable {
  case none = 0, synSent, synRecv, established, finWait, closeWait, lastAck, timeWait, close, synSent2
  public var name: String { "\(self)" }
}

public struct ConntrackEntry: Sendable, Equatable {
  public var original: Endpoints
  public var reply: Endpoints
  public var state: ConntrackTCPState?
  public var timeoutSeconds: UInt32?
  public var status: UInt32
  public var id: UInt32?
  public var zone: UInt16?
  public init(original: Endpoints, reply: Endpoints, state: ConntrackTCPState? = nil, timeoutSeconds: UInt32? = nil, status: UInt32 = 0, id: UInt32? = nil, zone: UInt16? = nil) {
    self.original = original
    self.reply = reply
    self.state = state
    self.timeoutSeconds = timeoutSeconds
    self.status = status
    self.id = id
    self.zone = zone
  }
  public var isDNAT: Bool { status & (1 << 5) != 0 }
  public var isSNAT: Bool { status & (1 << 4) != 0 }
  public func peerEndpoints(of socket: Endpoints) -> Endpoints? {
    if socket == original { return reply }
    if socket == reply { return original }
    return nil
  }
}

public struct SocketSettings: Sendable, Equatable {
  public enum Linger2: Sendable, Equatable { case `default`, off, nanoseconds(UInt64) }
  public var endpoints: Endpoints
  public var state: DiagSocket.State
  public var inode: UInt32
  public var keepalive: Bool
  public var keepaliveIdle: UInt64?
  public var keepaliveInterval: UInt64?
  public var keepaliveProbes: UInt8?
  public var linger2: Linger2
  public var userTimeoutMilliseconds: UInt32
  public var probesOut: UInt8
  public init(endpoints: Endpoints, state: DiagSocket.State, inode: UInt32 = 0, keepalive: Bool = false, keepaliveIdle: UInt64? = nil, keepaliveInterval: UInt64? = nil, keepaliveProbes: UInt8? = nil, linger2: Linger2 = .default, userTimeoutMilliseconds: UInt32 = 0, probesOut: UInt8 = 0) {
    self.endpoints = endpoints
    self.state = state
    self.inode = inode
    self.keepalive = keepalive
    self.keepaliveIdle = keepaliveIdle
    self.keepaliveInterval = keepaliveInterval
    self.keepaliveProbes = keepaliveProbes
    self.linger2 = linger2
    self.userTimeoutMilliseconds = userTimeoutMilliseconds
    self.probesOut = probesOut
  }
}

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

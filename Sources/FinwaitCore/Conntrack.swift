/// One conntrack entry of a TCP connection, as ctnetlink reports it. A tuple
/// is an `Endpoints` with local = source and remote = destination.
public struct ConntrackEntry: Sendable, Equatable {
  /// The first packet's direction, before NAT.
  public var original: Endpoints
  /// What the answers carry: after a DNAT its source is the real backend.
  public var reply: Endpoints
  /// nil when the kernel sent no CTA_PROTOINFO_TCP_STATE, or a state this
  /// build does not know.
  public var state: ConntrackTCPState?
  /// Seconds until the entry expires, unless a packet refreshes it.
  public var timeoutSeconds: UInt32?
  /// IPS_* bits (linux/netfilter/nf_conntrack_common.h).
  public var status: UInt32
  public var id: UInt32?
  /// Absent for the default zone (0).
  public var zone: UInt16?

  /// IPS_SRC_NAT_BIT, IPS_DST_NAT_BIT
  static let statusSourceNAT: UInt32 = 1 << 4
  static let statusDestinationNAT: UInt32 = 1 << 5

  public init(
    original: Endpoints, reply: Endpoints, state: ConntrackTCPState? = nil, timeoutSeconds: UInt32? = nil,
    status: UInt32 = 0, id: UInt32? = nil, zone: UInt16? = nil
  ) {
    self.original = original
    self.reply = reply
    self.state = state
    self.timeoutSeconds = timeoutSeconds
    self.status = status
    self.id = id
    self.zone = zone
  }

  /// The destination was rewritten (a service IP to a backend, as kube-proxy does).
  public var isDNAT: Bool { status & Self.statusDestinationNAT != 0 }
  /// The source was rewritten (masquerade).
  public var isSNAT: Bool { status & Self.statusSourceNAT != 0 }

  /// The endpoints the socket at the other end sees (its local -> remote),
  /// given a socket's own view that is the original or the reply direction
  /// of this entry; nil if it is neither. The client's socket sees the
  /// original tuple; the server's sees the reply tuple (the answers it sends).
  public func peerEndpoints(of socket: Endpoints) -> Endpoints? {
    if socket == original { return reply }
    if socket == reply { return original }
    return nil
  }
}

/// TCP_CONNTRACK_* (linux/netfilter/nf_conntrack_tcp.h).
public enum ConntrackTCPState: UInt8, Sendable, CaseIterable {
  case none = 0, synSent, synRecv, established, finWait, closeWait, lastAck, timeWait, close
  /// TCP_CONNTRACK_LISTEN before Linux 2.6.31: simultaneous open.
  case synSent2

  /// As `conntrack -L` prints it.
  public var name: String {
    switch self {
    case .none: "NONE"
    case .synSent: "SYN_SENT"
    case .synRecv: "SYN_RECV"
    case .established: "ESTABLISHED"
    case .finWait: "FIN_WAIT"
    case .closeWait: "CLOSE_WAIT"
    case .lastAck: "LAST_ACK"
    case .timeWait: "TIME_WAIT"
    case .close: "CLOSE"
    case .synSent2: "SYN_SENT2"
    }
  }
}

/// NETLINK_NETFILTER ctnetlink messages: the request for one entry by tuple
/// and the parse of the answer. Pure byte handling, so malformed input is
/// testable without a kernel; every length is checked before it is trusted.
/// Numbers from linux/netfilter/nfnetlink.h and nfnetlink_conntrack.h.
public enum ConntrackMessages {
  /// struct nfgenmsg
  static let nfgenLength = 4
  static let flagRequest: UInt16 = 0x0001
  /// NFNL_SUBSYS_CTNETLINK, in the high byte of nlmsg_type.
  static let subsystemCtnetlink: UInt16 = 1
  /// IPCTNL_MSG_CT_NEW: the type of a dumped or notified entry.
  static let messageNew: UInt16 = 0
  /// IPCTNL_MSG_CT_GET
  static let messageGet: UInt16 = 1
  static let errnoNoEntry: Int32 = 2  // ENOENT

  /// NLA_F_NESTED
  static let flagNested: UInt16 = 1 << 15
  /// NLA_TYPE_MASK: without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
  static let typeMask: UInt16 = 0x3fff

  // enum ctattr_type
  static let tupleOriginal: UInt16 = 1  // CTA_TUPLE_ORIG
  static let tupleReply: UInt16 = 2  // CTA_TUPLE_REPLY
  static let status: UInt16 = 3  // CTA_STATUS
  static let protoInfo: UInt16 = 4  // CTA_PROTOINFO
  static let timeout: UInt16 = 7  // CTA_TIMEOUT
  static let id: UInt16 = 12  // CTA_ID
  static let zone: UInt16 = 18  // CTA_ZONE
  // enum ctattr_tuple
  static let tupleIP: UInt16 = 1  // CTA_TUPLE_IP
  static let tupleProto: UInt16 = 2  // CTA_TUPLE_PROTO
  // enum ctattr_ip
  static let ipV4Source: UInt16 = 1  // CTA_IP_V4_SRC
  static let ipV4Destination: UInt16 = 2  // CTA_IP_V4_DST
  static let ipV6Source: UInt16 = 3  // CTA_IP_V6_SRC
  static let ipV6Destination: UInt16 = 4  // CTA_IP_V6_DST
  // enum ctattr_l4proto
  static let protoNumber: UInt16 = 1  // CTA_PROTO_NUM
  static let protoSourcePort: UInt16 = 2  // CTA_PROTO_SRC_PORT
  static let protoDestinationPort: UInt16 = 3  // CTA_PROTO_DST_PORT
  // enum ctattr_protoinfo, ctattr_protoinfo_tcp
  static let protoInfoTCP: UInt16 = 1  // CTA_PROTOINFO_TCP
  static let protoInfoTCPState: UInt16 = 1  // CTA_PROTOINFO_TCP_STATE
  static let ipprotoTCP: UInt8 = 6

  public enum ParseError: Error, Equatable {
    /// A length field points past the data received; `offset` is where, in the datagram.
    case truncated(offset: Int)
    /// The kernel answered with an error (errno) other than ENOENT.
    case kernel(errno: Int32)
    /// An attribute with the wrong payload size for its type, or an entry
    /// without a tuple, address, port or status; `offset` is where, in the datagram.
    case malformed(offset: Int)
    /// Neither an entry nor an error in the datagram.
    case noAnswer
  }

  /// Which tuple of the entry a lookup names.
  public enum Direction: Sendable {
    case original, reply
  }

  /// IPCTNL_MSG_CT_GET for the one TCP entry whose `direction` tuple is
  /// `tuple` (local = source), in the default zone. The kernel answers with
  /// that entry alone, or with ENOENT.
  public static func getRequest(_ tuple: Endpoints, direction: Direction, sequence: UInt32) -> [UInt8] {
    var w = AttributeWriter()
    w.u32(0)  // nlmsg_len, set below
    w.u16(subsystemCtnetlink << 8 | messageGet)
    w.u16(flagRequest)
    w.u32(sequence)
    w.u32(0)  // nlmsg_pid: the kernel
    w.bytes += [UInt8(tuple.local.kernelFamily), 0 /* NFNETLINK_V0 */, 0, 0 /* res_id */]
    w.nested(direction == .original ? tupleOriginal : tupleReply) { w in
      w.nested(tupleIP) { w in
        w.address(tuple.local, v4: ipV4Source, v6: ipV6Source)
        w.address(tuple.remote, v4: ipV4Destination, v6: ipV6Destination)
      }
      w.nested(tupleProto) { w in
        w.attribute(protoNumber, [ipprotoTCP])
        w.attribute(protoSourcePort, bigEndian(tuple.localPort))
        w.attribute(protoDestinationPort, bigEndian(tuple.remotePort))
      }
    }
    w.bytes.replaceSubrange(0..<4, with: littleEndian(UInt32(w.bytes.count)))
    return w.bytes
  }

  /// Parses one datagram answering `getRequest`: the entry, or nil when the
  /// kernel has none (ENOENT).
  public static func parse(_ data: UnsafeRawBufferPointer) throws(ParseError) -> ConntrackEntry? {
    var answer: ConntrackEntry??
    let cut = try NetlinkReply.forEachMessage(data) { (type, body, offset) throws(ParseError) -> NetlinkReply.Step in
      switch type {
      case NetlinkReply.messageError:
        guard let errno = NetlinkReply.errno(ofError: body) else { throw .truncated(offset: offset) }
        if errno == errnoNoEntry {
          answer = .some(nil)
          return .stop
        }
        if errno != 0 { throw .kernel(errno: errno) }  // 0: an ACK
      case NetlinkReply.messageDone:
        throw .noAnswer
      case subsystemCtnetlink << 8 | messageNew, subsystemCtnetlink << 8 | messageGet:
        guard body.count >= nfgenLength else { throw .truncated(offset: offset) }
        answer = try entry(body, at: offset + NetlinkReply.headerLength)
        return .stop
      default:
        break
      }
      return .next
    }
    if let answer { return answer }
    if let cut { throw .truncated(offset: cut) }
    throw .noAnswer
  }

  /// `m`: nfgenmsg and the attributes; `base`: where `m` starts in the datagram.
  static func entry(_ m: UnsafeRawBufferPointer, at base: Int) throws(ParseError) -> ConntrackEntry {
    var original: Endpoints?
    var reply: Endpoints?
    var status: UInt32?
    var state: ConntrackTCPState?
    var timeoutSeconds: UInt32?
    var id: UInt32?
    var zone: UInt16?
    try forEachAttribute(m, from: nfgenLength, base: base) { (type, payload, at) throws(ParseError) in
      switch type {
      case tupleOriginal: original = try tuple(payload, at: at)
      case tupleReply: reply = try tuple(payload, at: at)
      case Self.status: status = try bigEndianU32(payload, at: at)
      case Self.timeout: timeoutSeconds = try bigEndianU32(payload, at: at)
      case Self.id: id = try bigEndianU32(payload, at: at)
      case Self.zone:
        guard payload.count == 2 else { throw .malformed(offset: at) }
        zone = UInt16(payload[0]) << 8 | UInt16(payload[1])
      case protoInfo:
        try forEachAttribute(payload, base: at + 4) { (type, tcp, at) throws(ParseError) in
          guard type == protoInfoTCP else { return }
          try forEachAttribute(tcp, base: at + 4) { (type, value, at) throws(ParseError) in
            guard type == protoInfoTCPState else { return }
            guard value.count == 1 else { throw .malformed(offset: at) }
            state = ConntrackTCPState(rawValue: value[0])
          }
        }
      default: break
      }
    }
    guard let original, let reply, let status else { throw .malformed(offset: base - NetlinkReply.headerLength) }
    return ConntrackEntry(
      original: original, reply: reply, state: state, timeoutSeconds: timeoutSeconds, status: status, id: id, zone: zone)
  }

  /// CTA_TUPLE_* payload at `base` (its attribute header) to endpoints.
  static func tuple(_ m: UnsafeRawBufferPointer, at base: Int) throws(ParseError) -> Endpoints {
    var source: IPAddress?
    var destination: IPAddress?
    var sourcePort: UInt16?
    var destinationPort: UInt16?
    try forEachAttribute(m, base: base + 4) { (type, payload, at) throws(ParseError) in
      switch type {
      case tupleIP:
        try forEachAttribute(payload, base: at + 4) { (type, value, at) throws(ParseError) in
          let family: UInt16
          switch type {
          case ipV4Source, ipV4Destination:
            guard value.count == 4 else { throw .malformed(offset: at) }
            family = 2
          case ipV6Source, ipV6Destination:
            guard value.count == 16 else { throw .malformed(offset: at) }
            family = 10
          default: return
          }
          var raw = [UInt8](repeating: 0, count: 16)
          raw.replaceSubrange(0..<value.count, with: value)
          let address = raw.withUnsafeBytes { IPAddress(family: family, networkOrder: $0) }
          if type == ipV4Source || type == ipV6Source { source = address } else { destination = address }
        }
      case tupleProto:
        try forEachAttribute(payload, base: at + 4) { (type, value, at) throws(ParseError) in
          guard type == protoSourcePort || type == protoDestinationPort else { return }
          guard value.count == 2 else { throw .malformed(offset: at) }
          let port = UInt16(value[0]) << 8 | UInt16(value[1])
          if type == protoSourcePort { sourcePort = port } else { destinationPort = port }
        }
      default: break
      }
    }
    guard let source, let destination, let sourcePort, let destinationPort else { throw .malformed(offset: base) }
    return Endpoints(local: source, localPort: sourcePort, remote: destination, remotePort: destinationPort)
  }

  static func bigEndianU32(_ payload: UnsafeRawBufferPointer, at: Int) throws(ParseError) -> UInt32 {
    guard payload.count == 4 else { throw .malformed(offset: at) }
    return UInt32(bigEndian: payload.loadUnaligned(as: UInt32.self))
  }

  /// Calls `body` with each attribute's type (flags masked), payload and
  /// offset in the datagram, from `start` in `m`, which starts at `base`.
  static func forEachAttribute(
    _ m: UnsafeRawBufferPointer, from start: Int = 0, base: Int,
    _ body: (UInt16, UnsafeRawBufferPointer, Int) throws(ParseError) -> Void
  ) throws(ParseError) {
    var offset = start
    while offset + 4 <= m.count {
      let length = Int(m.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
      let type = m.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self).littleEndian & typeMask
      guard length >= 4, offset + length <= m.count else { throw .truncated(offset: base + offset) }
      try body(type, UnsafeRawBufferPointer(rebasing: m[(offset + 4)..<(offset + length)]), base + offset)
      offset += (length + 3) & ~3
    }
  }
}

/// Appends netlink attributes (struct nlattr), each padded to 4 bytes.
struct AttributeWriter {
  var bytes: [UInt8] = []

  mutating func u16(_ v: UInt16) { bytes += littleEndian(v) }
  mutating func u32(_ v: UInt32) { bytes += littleEndian(v) }

  mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
    u16(UInt16(4 + payload.count))
    u16(type)
    bytes += payload
    bytes += [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
  }

  /// An NLA_F_NESTED attribute holding what `body` writes.
  mutating func nested(_ type: UInt16, _ body: (inout AttributeWriter) -> Void) {
    let start = bytes.count
    u16(0)
    u16(type | ConntrackMessages.flagNested)
    body(&self)
    bytes.replaceSubrange(start..<(start + 2), with: littleEndian(UInt16(bytes.count - start)))
  }

  mutating func address(_ address: IPAddress, v4: UInt16, v6: UInt16) {
    var raw = [UInt8](repeating: 0, count: 16)
    raw.withUnsafeMutableBytes { address.copyNetworkOrder(to: $0) }
    if address.family == .ipv4 { attribute(v4, Array(raw[0..<4])) } else { attribute(v6, raw) }
  }
}

private func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
private func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

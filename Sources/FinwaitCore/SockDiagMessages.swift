/// NETLINK_SOCK_DIAG (inet_diag) messages: building the dump request and
/// parsing the replies. Pure byte handling, so malformed input is testable
/// without a kernel; every length is checked before it is trusted.
public enum SockDiagMessages {
  /// SOCK_DIAG_BY_FAMILY
  static let messageByFamily: UInt16 = 20
  static let diagMessageLength = 72
  /// INET_DIAG_INFO: the struct tcp_info attribute.
  static let attributeInfo: UInt16 = 2
  static let tcpInfoLastAckReceived = 56

  public enum ParseError: Error, Equatable {
    /// A length field points past the data received; `offset` is where, in the datagram.
    case truncated(offset: Int)
    /// The kernel answered with an error (errno).
    case kernel(errno: Int32)
  }

  public struct Batch: Sendable, Equatable {
    public var sockets: [DiagSocket] = []
    /// NLMSG_DONE seen: the dump is complete.
    public var done = false

    public init(sockets: [DiagSocket] = [], done: Bool = false) {
      self.sockets = sockets
      self.done = done
    }
  }

  /// A dump request for TCP sockets of `family` (2 or 10) in `states` (a mask
  /// of 1 << TCP state), asking for tcp_info.
  public static func dumpRequest(family: UInt8, states: UInt32, sequence: UInt32) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(72)
    func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    u32(72)                       // nlmsg_len: header + inet_diag_req_v2 (56)
    u16(messageByFamily)          // nlmsg_type
    u16(0x0001 | 0x0300)          // NLM_F_REQUEST | NLM_F_DUMP
    u32(sequence)
    u32(0)                        // nlmsg_pid: the kernel
    bytes += [family, 6 /* IPPROTO_TCP */, UInt8(1 << (attributeInfo - 1)), 0]
    u32(states)
    bytes += [UInt8](repeating: 0, count: 48)  // inet_diag_sockid: any
    return bytes
  }

  /// A request for the one TCP socket with `endpoints` (as seen from it),
  /// in any state, asking for tcp_info. The kernel answers with that socket
  /// alone, or with ENOENT: no dump of the namespace.
  public static func lookupRequest(_ endpoints: Endpoints, sequence: UInt32) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(72)
    func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    func address(_ a: IPAddress) {
      var raw = [UInt8](repeating: 0, count: 16)
      raw.withUnsafeMutableBytes { a.copyNetworkOrder(to: $0) }
      bytes += raw
    }
    u32(72)
    u16(messageByFamily)
    u16(0x0001)                   // NLM_F_REQUEST: not a dump
    u32(sequence)
    u32(0)
    bytes += [UInt8(endpoints.local.kernelFamily), 6, UInt8(1 << (attributeInfo - 1)), 0]
    u32(~0)                       // every state
    bytes += [UInt8(endpoints.localPort >> 8), UInt8(endpoints.localPort & 0xff),
              UInt8(endpoints.remotePort >> 8), UInt8(endpoints.remotePort & 0xff)]
    address(endpoints.local)
    address(endpoints.remote)
    u32(0)                        // any interface
    u32(~0)                       // INET_DIAG_NOCOOKIE
    u32(~0)
    return bytes
  }

  /// Parses one datagram of replies.
  public static func parse(_ data: UnsafeRawBufferPointer) throws(ParseError) -> Batch {
    var batch = Batch()
    let cut = try NetlinkReply.forEachMessage(data) { (type, body, offset) throws(ParseError) -> NetlinkReply.Step in
      switch type {
      case NetlinkReply.messageDone:
        batch.done = true
        return .stop
      case NetlinkReply.messageError:
        guard let errno = NetlinkReply.errno(ofError: body) else { throw .truncated(offset: offset) }
        if errno != 0 { throw .kernel(errno: errno) }
      case messageByFamily:
        guard body.count >= diagMessageLength else { throw .truncated(offset: offset) }
        if let socket = try socket(body, at: offset + NetlinkReply.headerLength) { batch.sockets.append(socket) }
      default:
        break
      }
      return .next
    }
    if let cut { throw .truncated(offset: cut) }
    return batch
  }

  /// `base`: where `m` starts in the datagram, so an error points into the datagram.
  static func socket(_ m: UnsafeRawBufferPointer, at base: Int) throws(ParseError) -> DiagSocket? {
    guard let state = DiagSocket.State(rawValue: m[1]) else { return nil }
    let family = m[0]
    func port(_ at: Int) -> UInt16 { UInt16(m[at]) << 8 | UInt16(m[at + 1]) }
    func address(_ at: Int) -> IPAddress? {
      IPAddress(family: UInt16(family), networkOrder: UnsafeRawBufferPointer(rebasing: m[at..<(at + 16)]))
    }
    guard let local = address(8), let remote = address(24) else { return nil }
    func u32(_ at: Int) -> UInt32 { m.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian }
    var socket = DiagSocket(
      state: state, endpoints: Endpoints(local: local, localPort: port(4), remote: remote, remotePort: port(6)),
      inode: u32(68), uid: u32(64), timer: m[2], expiresMilliseconds: u32(52), timerRetransmits: m[3],
      receiveQueue: u32(56), sendQueue: u32(60))
    var offset = diagMessageLength
    while offset + 4 <= m.count {
      let length = Int(m.loadUnaligned(fromByteOffset: offset, as: UInt16.self).littleEndian)
      let type = m.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self).littleEndian
      guard length >= 4, offset + length <= m.count else { throw .truncated(offset: base + offset) }
      if type == attributeInfo, length - 4 >= tcpInfoLastAckReceived + 4 {
        socket.lastAckReceivedMilliseconds = u32(offset + 4 + tcpInfoLastAckReceived)
        socket.tcp = TCPInfo(UnsafeRawBufferPointer(rebasing: m[(offset + 4)..<(offset + length)]))
      }
      offset += (length + 3) & ~3
    }
    return socket
  }
}

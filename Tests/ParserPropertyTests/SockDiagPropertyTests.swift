import FinwaitCore
import PropertyBased
import Testing

/// One inet_diag_msg as the kernel lays it out, from random field values,
/// some of them (state, family) out of range on purpose.
private struct WireSocket: Sendable {
  var family: UInt8
  var state: UInt8
  var timer: UInt8
  var sport: UInt16
  var dport: UInt16
  var source: [UInt8]
  var destination: [UInt8]
  var expires: UInt32
  var uid: UInt32
  var inode: UInt32
  var retransmits: UInt8
  var receiveQueue: UInt32
  var sendQueue: UInt32
  /// INET_DIAG_INFO payload length (tcp_info), and its tcpi_last_ack_recv.
  var info: (length: Int, lastAck: UInt32)?
  /// The rest of tcp_info, for lengths that hold it.
  var tcp: TCPInfo

  /// tcp_info as a kernel with a struct of `length` bytes sends it.
  var tcpInfo: (bytes: [UInt8], parsed: TCPInfo?)? {
    guard let info else { return nil }
    guard info.length >= TCPInfo.minimumLength else {
      var bytes = [UInt8](repeating: 0xa5, count: info.length)
      if info.length >= 60 { bytes.replaceSubrange(56..<60, with: littleEndian(info.lastAck)) }
      return (bytes, nil)
    }
    var full = tcp
    full.lastAckReceivedMilliseconds = info.lastAck
    var parsed = full
    if info.length < 136 { parsed.bytesReceived = nil }
    return (full.encoded(length: info.length), parsed)
  }
  /// Other attributes the parser must step over.
  var others: [(type: UInt16, payload: [UInt8])]

  /// What the parser must return for it: nil when it must be skipped.
  var expected: DiagSocket? {
    guard let state = DiagSocket.State(rawValue: state) else { return nil }
    let local = source.withUnsafeBytes { IPAddress(family: UInt16(family), networkOrder: $0) }
    let remote = destination.withUnsafeBytes { IPAddress(family: UInt16(family), networkOrder: $0) }
    guard let local, let remote else { return nil }
    return DiagSocket(
      state: state, endpoints: Endpoints(local: local, localPort: sport, remote: remote, remotePort: dport),
      inode: inode, uid: uid, timer: timer, expiresMilliseconds: expires,
      lastAckReceivedMilliseconds: info.flatMap { $0.length >= 60 ? $0.lastAck : nil }, timerRetransmits: retransmits,
      receiveQueue: receiveQueue, sendQueue: sendQueue, tcp: tcpInfo?.parsed)
  }

  /// The inet_diag_msg and its attributes (the netlink payload).
  var payload: [UInt8] {
    var m = [family, state, timer, retransmits]
    m += bigEndian(sport) + bigEndian(dport) + source + destination
    m += littleEndian(UInt32(0)) + littleEndian(UInt32(0xdead)) + littleEndian(UInt32(0xbeef))  // if, cookie
    m += littleEndian(expires) + littleEndian(receiveQueue) + littleEndian(sendQueue) + littleEndian(uid) + littleEndian(inode)
    var attributes = others.map { (type: $0.type, payload: $0.payload) }
    if let info, let tcpInfo {
      attributes.insert((2, tcpInfo.bytes), at: attributes.isEmpty ? 0 : (Int(info.lastAck) % (attributes.count + 1)))
    }
    for a in attributes {
      m += littleEndian(UInt16(4 + a.payload.count)) + littleEndian(a.type) + a.payload
      m += [UInt8](repeating: 0, count: (4 - a.payload.count % 4) % 4)
    }
    return m
  }
}

private func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
private func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

/// A netlink message: nlmsghdr, then `payload` padded to 4 bytes.
private func netlinkMessage(type: UInt16, payload: [UInt8]) -> [UInt8] {
  littleEndian(UInt32(16 + payload.count)) + littleEndian(type) + littleEndian(UInt16(2)) /* NLM_F_MULTI */
    + littleEndian(UInt32(7)) + littleEndian(UInt32(0)) + payload
    + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
}

/// One datagram of a dump reply, with what parsing it must give, and for
/// each message where it starts, its nlmsg_len and the batch up to its end.
private struct Reply: Sendable, CustomStringConvertible {
  var bytes: [UInt8] = []
  var expected = SockDiagMessages.Batch()
  var messages: [(offset: Int, length: Int, batch: SockDiagMessages.Batch)] = []

  mutating func append(_ message: [UInt8], socket: DiagSocket? = nil, isDone: Bool = false) {
    let length = Int(message[0]) | Int(message[1]) << 8
    if let socket { expected.sockets.append(socket) }
    if isDone { expected.done = true }
    messages.append((bytes.count, length, expected))
    bytes += message
  }

  var description: String { "\(bytes.count) bytes, \(expected.sockets.count) sockets, done \(expected.done): \(bytes)" }
}

private func randomSocket(_ rng: inout any SeededRandomNumberGenerator) -> WireSocket {
  func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
  let family: UInt8 = Int.random(in: 0..<10, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng)
    : Bool.random(using: &rng) ? 2 : 10
  let state: UInt8 = Int.random(in: 0..<10, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng)
    : UInt8.random(in: 1...12, using: &rng)
  let infoLength = [Int.random(in: 0...59, using: &rng), 60, Int.random(in: 61...260, using: &rng),
                    TCPInfo.minimumLength, 136, 232].randomElement(using: &rng) ?? 60
  func u32() -> UInt32 { UInt32.random(in: 0...UInt32.max, using: &rng) }
  func u8() -> UInt8 { UInt8.random(in: 0...255, using: &rng) }
  let tcp = TCPInfo(
    options: TCPInfo.Options(rawValue: u8()), sendWindowScale: u8() & 0x0f, receiveWindowScale: u8() & 0x0f,
    retransmits: u8(), probes: u8(), backoff: u8(), rtoMicroseconds: u32(), lastDataSentMilliseconds: u32(),
    lastDataReceivedMilliseconds: u32(), lastAckReceivedMilliseconds: 0, rttMicroseconds: u32(),
    totalRetransmits: u32(), bytesReceived: UInt64.random(in: 0...UInt64.max, using: &rng))
  let others = (0..<Int.random(in: 0...3, using: &rng)).map { _ -> (type: UInt16, payload: [UInt8]) in
    (type: [UInt16(1), 3, 4, 5, 8, 9, 11, 0x7fff].randomElement(using: &rng) ?? 1, payload: bytes(Int.random(in: 0...37, using: &rng)))
  }
  return WireSocket(
    family: family, state: state, timer: UInt8.random(in: 0...4, using: &rng),
    sport: UInt16.random(in: 0...UInt16.max, using: &rng), dport: UInt16.random(in: 0...UInt16.max, using: &rng),
    source: bytes(16), destination: bytes(16), expires: UInt32.random(in: 0...UInt32.max, using: &rng),
    uid: UInt32.random(in: 0...UInt32.max, using: &rng), inode: UInt32.random(in: 0...UInt32.max, using: &rng),
    retransmits: u8(), receiveQueue: u32(), sendQueue: u32(),
    info: Bool.random(using: &rng) ? (infoLength, UInt32.random(in: 0...UInt32.max, using: &rng)) : nil,
    tcp: tcp, others: others)
}

/// 0 to 8 sockets with no-op messages and ACKs between them, usually ending
/// with NLMSG_DONE, as one recv() of a dump may return them.
private let replies = Generator { rng -> Reply in
  var reply = Reply()
  for _ in 0..<Int.random(in: 0...8, using: &rng) {
    switch Int.random(in: 0..<8, using: &rng) {
    case 0:  // NLMSG_NOOP with a payload
      let payload = (0..<Int.random(in: 0...9, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
      reply.append(netlinkMessage(type: 1, payload: payload))
    case 1:  // an ACK: NLMSG_ERROR with error 0, then the request's header
      reply.append(netlinkMessage(type: 2, payload: littleEndian(Int32(0)) + [UInt8](repeating: 0, count: 16)))
    default:
      let socket = randomSocket(&rng)
      reply.append(netlinkMessage(type: 20, payload: socket.payload), socket: socket.expected)
    }
  }
  if Int.random(in: 0..<4, using: &rng) != 0 {
    reply.append(netlinkMessage(type: 3, payload: littleEndian(Int32(0))), isDone: true)
  }
  return reply
}

/// The parse of `bytes[..<end]` as a value, so tests can compare failures.
private func parse(_ bytes: [UInt8], upTo end: Int? = nil) -> Result<SockDiagMessages.Batch, SockDiagMessages.ParseError> {
  bytes.withUnsafeBytes { raw in
    do throws(SockDiagMessages.ParseError) {
      return .success(try SockDiagMessages.parse(UnsafeRawBufferPointer(rebasing: raw[..<(end ?? raw.count)])))
    } catch {
      return .failure(error)
    }
  }
}

@Suite struct SockDiagPropertyTests {
  @Test func repliesBuiltFromRandomFieldsParseBackToThem() async {
    let trailers = Gen<UInt8>.value(in: 0...255).array(of: 0...40)
    await propertyCheck(count: 300, input: replies, trailers) { reply, trailer in
      #expect(parse(reply.bytes) == .success(reply.expected))
      // Nothing after NLMSG_DONE is read.
      if reply.expected.done { #expect(parse(reply.bytes + trailer) == .success(reply.expected)) }
    }
  }

  @Test func everyTruncationIsRejectedOrParsedToAPrefix() async {
    await propertyCheck(count: 60, input: replies) { reply in
      #expect(parse(reply.bytes, upTo: 0) == .success(SockDiagMessages.Batch()))
      for cut in 1...max(1, reply.bytes.count) where cut <= reply.bytes.count {
        let result = parse(reply.bytes, upTo: cut)
        // The message the cut falls in (or ends): complete if nlmsg_len
        // fits, even when its alignment padding was cut off.
        guard let message = reply.messages.last(where: { $0.offset < cut }) else { continue }
        if cut >= message.offset + message.length {
          #expect(result == .success(message.batch), "cut at \(cut)")
        } else {
          #expect(result == .failure(.truncated(offset: message.offset)), "cut at \(cut)")
        }
      }
    }
  }

  @Test func kernelErrorsEndTheReplyWithTheirErrno() async {
    let codes = Generator { rng -> Int32 in
      [Int32.random(in: -4095 ... -1, using: &rng), 0, Int32.min, Int32.max, Int32.random(in: 1...Int32.max, using: &rng)]
        .randomElement(using: &rng) ?? 0
    }
    await propertyCheck(count: 300, input: replies, codes) { reply, code in
      var bytes = netlinkMessage(type: 2, payload: littleEndian(code) + [UInt8](repeating: 0, count: 16))
      bytes += reply.bytes
      let result = parse(bytes)
      if code == 0 {
        #expect(result == .success(reply.expected))
      } else if code < 0 && code != .min {
        #expect(result == .failure(.kernel(errno: -code)))
      } else {
        // Not an errno the kernel sends: an error all the same, not a crash.
        guard case .failure(.kernel) = result else {
          Issue.record("error code \(code) gave \(result)")
          return
        }
      }
    }
  }

  @Test func garbageAndCorruptedRepliesNeverCrashOrOverread() async {
    let randomBytes = Generator { rng -> [UInt8] in
      (0..<Int.random(in: 0...400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    let corrupted = Generator { rng -> [UInt8] in
      var bytes = replies.run(using: &rng).bytes
      guard !bytes.isEmpty else { return bytes }
      for _ in 0..<Int.random(in: 1...8, using: &rng) {
        let at = Int.random(in: 0..<bytes.count, using: &rng)
        // Length fields are the dangerous bytes: hit them with extremes too.
        bytes[at] = [0, 0xff, 0x7f, 0x80, 4, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng) ?? 0
      }
      return bytes
    }
    for input in [randomBytes, corrupted] {
      await propertyCheck(count: 1_000, input: input) { bytes in
        switch parse(bytes) {
        case let .success(batch):
          // Each socket takes a header and a 72-byte inet_diag_msg of its own.
          #expect(batch.sockets.count <= bytes.count / (16 + 72))
        case let .failure(.truncated(offset)):
          #expect((0..<bytes.count).contains(offset) && offset % 4 == 0, "offset \(offset) of \(bytes.count)")
        case .failure(.kernel):
          break
        }
      }
    }
  }
}

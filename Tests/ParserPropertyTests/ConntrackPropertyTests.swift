import FinwaitCore
import PropertyBased
import Testing

private func littleEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
private func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }

/// One netlink attribute; `flags` are NLA_F_NESTED / NLA_F_NET_BYTEORDER bits the parser must mask.
private func attribute(_ type: UInt16, _ payload: [UInt8], flags: UInt16 = 0) -> [UInt8] {
  littleEndian(UInt16(4 + payload.count)) + littleEndian(type | flags) + payload
    + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
}

private func addressBytes(_ a: IPAddress) -> [UInt8] {
  switch a {
  case let .v4(a, b, c, d): [a, b, c, d]
  case let .v6(high, low): bigEndian(high) + bigEndian(low)
  }
}

/// An entry as the kernel lays it out (ctnetlink_fill_info), from random
/// field values, with attributes the parser must step over, in random order.
private struct WireEntry: Sendable, CustomStringConvertible {
  var entry: ConntrackEntry
  /// The raw CTA_PROTOINFO_TCP_STATE, unknown values included.
  var rawState: UInt8?
  var others: [(type: UInt16, payload: [UInt8])]
  var order: [Int]
  var nestedFlag: Bool
  var messageType: UInt16

  var expected: ConntrackEntry {
    var e = entry
    e.state = rawState.flatMap(ConntrackTCPState.init(rawValue:))
    return e
  }

  func tuple(_ type: UInt16, _ t: Endpoints) -> [UInt8] {
    let nested: UInt16 = nestedFlag ? 0x8000 : 0
    let v4 = t.local.family == .ipv4
    let ip = attribute(v4 ? 1 : 3, addressBytes(t.local)) + attribute(v4 ? 2 : 4, addressBytes(t.remote))
    let proto = attribute(1, [6]) + attribute(2, bigEndian(t.localPort)) + attribute(3, bigEndian(t.remotePort))
    return attribute(type, attribute(1, ip, flags: nested) + attribute(2, proto, flags: nested), flags: nested)
  }

  var payload: [UInt8] {
    var attributes: [[UInt8]] = [
      tuple(1, entry.original), tuple(2, entry.reply), attribute(3, bigEndian(entry.status), flags: 0x4000),
    ]
    if let t = entry.timeoutSeconds { attributes.append(attribute(7, bigEndian(t))) }
    if let id = entry.id { attributes.append(attribute(12, bigEndian(id))) }
    if let zone = entry.zone { attributes.append(attribute(18, bigEndian(zone))) }
    if let rawState {
      let tcp = attribute(1, [rawState]) + attribute(2, [7]) + attribute(4, [0x23, 0])
      attributes.append(attribute(4, attribute(1, tcp, flags: 0x8000), flags: 0x8000))
    }
    attributes += others.map { attribute($0.type, $0.payload) }
    let family: UInt8 = entry.original.local.family == .ipv4 ? 2 : 10
    return [family, 0, 0, 0] + order.filter { $0 < attributes.count }.flatMap { attributes[$0] }
  }

  var message: [UInt8] { netlinkMessage(type: messageType, payload: payload) }
  var description: String { "\(entry) state \(String(describing: rawState)): \(message)" }
}

/// nlmsghdr, then `payload` padded to 4 bytes.
private func netlinkMessage(type: UInt16, payload: [UInt8]) -> [UInt8] {
  littleEndian(UInt32(16 + payload.count)) + littleEndian(type) + littleEndian(UInt16(2)) + littleEndian(UInt32(7))
    + littleEndian(UInt32(0)) + payload + [UInt8](repeating: 0, count: (4 - payload.count % 4) % 4)
}

private func randomEndpoints(v4: Bool, _ rng: inout any SeededRandomNumberGenerator) -> Endpoints {
  func address() -> IPAddress {
    v4 ? .v4(UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng), UInt8.random(in: 0...255, using: &rng),
             UInt8.random(in: 0...255, using: &rng))
      : .v6(high: UInt64.random(in: 0...UInt64.max, using: &rng), low: UInt64.random(in: 0...UInt64.max, using: &rng))
  }
  return Endpoints(local: address(), localPort: UInt16.random(in: 0...UInt16.max, using: &rng),
                   remote: address(), remotePort: UInt16.random(in: 0...UInt16.max, using: &rng))
}

private let wireEntries = Generator { rng -> WireEntry in
  let v4 = Bool.random(using: &rng)
  let original = randomEndpoints(v4: v4, &rng)
  // Mostly the reverse of the original, as without NAT, or a DNAT/SNAT rewrite; sometimes anything.
  var reply = Endpoints(local: original.remote, localPort: original.remotePort, remote: original.local, remotePort: original.localPort)
  switch Int.random(in: 0..<4, using: &rng) {
  case 0: break
  case 1: (reply.local, reply.localPort) = (randomEndpoints(v4: v4, &rng).local, UInt16.random(in: 0...UInt16.max, using: &rng))
  case 2: (reply.remote, reply.remotePort) = (randomEndpoints(v4: v4, &rng).remote, UInt16.random(in: 0...UInt16.max, using: &rng))
  default: reply = randomEndpoints(v4: v4, &rng)
  }
  let entry = ConntrackEntry(
    original: original, reply: reply, state: nil,
    timeoutSeconds: Bool.random(using: &rng) ? UInt32.random(in: 0...UInt32.max, using: &rng) >> UInt32.random(in: 0...31, using: &rng) : nil,
    status: UInt32.random(in: 0...UInt32.max, using: &rng) & (Bool.random(using: &rng) ? 0x3fff : ~0),
    id: Bool.random(using: &rng) ? UInt32.random(in: 0...UInt32.max, using: &rng) : nil,
    zone: Int.random(in: 0..<4, using: &rng) == 0 ? UInt16.random(in: 0...UInt16.max, using: &rng) : nil)
  let rawState: UInt8? = Int.random(in: 0..<5, using: &rng) == 0 ? nil
    : Int.random(in: 0..<6, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8.random(in: 0...9, using: &rng)
  // CTA_MARK, CTA_USE, counters, CTA_TIMESTAMP, CTA_LABELS, unknown: stepped over.
  let others = (0..<Int.random(in: 0...4, using: &rng)).map { _ -> (type: UInt16, payload: [UInt8]) in
    (type: [UInt16(8), 9, 10, 11, 20, 22, 31, 0x3fff].randomElement(using: &rng) ?? 8,
     payload: (0..<Int.random(in: 0...21, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
  }
  return WireEntry(
    entry: entry, rawState: rawState, others: others, order: Array(0..<(8 + others.count)).shuffled(using: &rng),
    nestedFlag: Bool.random(using: &rng), messageType: Bool.random(using: &rng) ? 0x0100 : 0x0101)
}

private func parse(_ bytes: [UInt8], upTo end: Int? = nil) -> Result<ConntrackEntry?, ConntrackMessages.ParseError> {
  bytes.withUnsafeBytes { raw in
    do throws(ConntrackMessages.ParseError) {
      return .success(try ConntrackMessages.parse(UnsafeRawBufferPointer(rebasing: raw[..<(end ?? raw.count)])))
    } catch {
      return .failure(error)
    }
  }
}

@Suite struct ConntrackPropertyTests {
  @Test func entriesBuiltFromRandomFieldsParseBackToThem() async {
    let noops = Gen<UInt8>.value(in: 0...3)
    await propertyCheck(count: 500, input: wireEntries, noops) { wire, noopCount in
      #expect(parse(wire.message) == .success(wire.expected))
      // NLMSG_NOOPs and ACKs before the entry are stepped over.
      var prefix: [UInt8] = []
      for i in 0..<noopCount {
        prefix += i % 2 == 0 ? netlinkMessage(type: 1, payload: [1, 2, 3]) : netlinkMessage(type: 2, payload: littleEndian(Int32(0)))
      }
      #expect(parse(prefix + wire.message) == .success(wire.expected))
    }
  }

  @Test func aRequestsTupleIsWhatTheParserReadsBack() async {
    await propertyCheck(count: 300, input: wireEntries) { wire in
      // The request's attributes (after nlmsghdr and nfgenmsg) and the
      // reply-direction request's, with a status, make an entry message.
      let original = ConntrackMessages.getRequest(wire.entry.original, direction: .original, sequence: 1)
      let reply = ConntrackMessages.getRequest(wire.entry.reply, direction: .reply, sequence: 1)
      let payload = Array(original[16...]) + Array(reply[20...]) + attribute(3, bigEndian(wire.entry.status))
      let expected = ConntrackEntry(original: wire.entry.original, reply: wire.entry.reply, status: wire.entry.status)
      #expect(parse(netlinkMessage(type: 0x0100, payload: payload)) == .success(expected))
    }
  }

  @Test func everyTruncationIsATypedError() async {
    await propertyCheck(count: 100, input: wireEntries) { wire in
      let message = wire.message
      #expect(parse(message, upTo: 0) == .failure(.noAnswer))
      for cut in 1..<message.count {
        #expect(parse(message, upTo: cut) == .failure(.truncated(offset: 0)), "cut at \(cut)")
      }
    }
  }

  @Test func kernelErrorsAreTypedAndENOENTIsNoEntry() async {
    let codes = Generator { rng -> Int32 in
      [Int32.random(in: -4095 ... -1, using: &rng), -2, Int32.min, Int32.max].randomElement(using: &rng) ?? -2
    }
    await propertyCheck(count: 300, input: codes, wireEntries) { code, wire in
      let error = netlinkMessage(type: 2, payload: littleEndian(code) + [UInt8](repeating: 0, count: 16))
      switch (code, parse(error + wire.message)) {
      case (-2, let result): #expect(result == .success(nil))
      case (let code, .failure(.kernel(let errno))): #expect(code == .min || errno == -code)
      case (let code, let result): Issue.record("error code \(code) gave \(result)")
      }
    }
  }

  @Test func garbageAndFlippedBytesNeverTrapAndGiveTypedErrors() async {
    let randomBytes = Generator { rng -> [UInt8] in
      (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    let flipped = Generator { rng -> [UInt8] in
      var bytes = wireEntries.run(using: &rng).message
      for _ in 0..<Int.random(in: 1...6, using: &rng) {
        let at = Int.random(in: 0..<bytes.count, using: &rng)
        // Length and type fields are the dangerous bytes: hit them with extremes too.
        bytes[at] = [0, 0xff, 0x7f, 0x80, 3, 4, 5, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng) ?? 0
      }
      return bytes
    }
    for input in [randomBytes, flipped] {
      await propertyCheck(count: 1_000, input: input) { bytes in
        switch parse(bytes) {
        case .success, .failure(.kernel), .failure(.noAnswer):
          break
        case let .failure(.truncated(offset)), let .failure(.malformed(offset)):
          #expect((0..<bytes.count).contains(offset), "offset \(offset) of \(bytes.count)")
        }
      }
    }
  }

  @Test func peerOfThePeerIsTheSocket() async {
    let sockets = Generator { rng -> (ConntrackEntry, Endpoints, Endpoints) in
      let entry = wireEntries.run(using: &rng).entry
      let stranger = randomEndpoints(v4: entry.original.local.family == .ipv4, &rng)
      return (entry, Bool.random(using: &rng) ? entry.original : entry.reply, stranger)
    }
    await propertyCheck(count: 500, input: sockets) { entry, socket, stranger in
      let peer = entry.peerEndpoints(of: socket)
      #expect(peer != nil)
      #expect(peer.flatMap(entry.peerEndpoints(of:)) == socket)
      if stranger != entry.original && stranger != entry.reply { #expect(entry.peerEndpoints(of: stranger) == nil) }
    }
  }
}

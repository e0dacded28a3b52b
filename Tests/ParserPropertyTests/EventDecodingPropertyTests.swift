import CFinwaitEvent
import FinwaitCore
import PropertyBased
import Testing

/// A ring-buffer record of 128 random bytes, with kind, end and family
/// usually valid so that most records get past the first check.
private struct RawRecord: Sendable, CustomStringConvertible {
  var bytes: [UInt8]

  var event: fw_event {
    var e = fw_event()
    withUnsafeMutableBytes(of: &e) { $0.copyBytes(from: bytes) }
    return e
  }

  var description: String { "\(bytes)" }
}

private let records = Generator { rng -> RawRecord in
  var e = fw_event()
  withUnsafeMutableBytes(of: &e) { raw in
    for i in raw.indices { raw[i] = UInt8.random(in: 0...255, using: &rng) }
  }
  if Int.random(in: 0..<8, using: &rng) != 0 { e.kind = UInt8.random(in: 1...4, using: &rng) }
  if Int.random(in: 0..<8, using: &rng) != 0 { e.end = UInt8.random(in: 0...3, using: &rng) }
  if Int.random(in: 0..<8, using: &rng) != 0 { e.family = Bool.random(using: &rng) ? 2 : 10 }
  if Bool.random(using: &rng) {
    // A short comm, as most are: NUL-terminated inside the 16 bytes.
    let length = Int.random(in: 0...15, using: &rng)
    withUnsafeMutableBytes(of: &e.comm) { $0[length] = 0 }
  }
  return RawRecord(bytes: withUnsafeBytes(of: e) { Array($0) })
}

@Suite struct EventDecodingPropertyTests {
  @Test func anyRecordDecodesToItsFieldsOrIsRejectedForItsBadByte() async {
    await propertyCheck(count: 3_000, input: records) { record in
      let raw = record.event
      let decoded: Result<Event, DecodeError>
      do throws(DecodeError) { decoded = .success(try Event(decoding: raw)) } catch { decoded = .failure(error) }

      guard (1...4).contains(raw.kind) else {
        #expect(decoded == .failure(.unknownKind(raw.kind)))
        return
      }
      guard raw.kind != 2 || (1...3).contains(raw.end) else {
        #expect(decoded == .failure(.unknownEnd(raw.end)))
        return
      }
      guard raw.family == 2 || raw.family == 10 else {
        #expect(decoded == .failure(.unknownFamily(raw.family)))
        return
      }
      guard case let .success(event) = decoded else {
        Issue.record("a well-formed record was rejected: \(decoded)")
        return
      }
      let flags = raw.flags
      #expect(event.timestamp == raw.ts_ns)
      #expect(event.finWait1At == (raw.ts_fin_wait1_ns == 0 ? nil : raw.ts_fin_wait1_ns))
      #expect(event.finWait2At == (flags & 8 != 0 ? raw.ts_fin_wait2_ns : nil))
      #expect(event.orphanedAtEnd == (flags & 4 != 0))
      let c = event.connection
      #expect(c.socket == raw.skaddr && c.netns == raw.netns && c.syscallNumber == Int32(raw.syscall_nr))
      #expect(c.orphanedAtEntry == (flags & 2 != 0))
      #expect(c.endpoints.localPort == raw.sport && c.endpoints.remotePort == raw.dport)
      // Addresses: network order, IPv4 in the first 4 of 16 bytes.
      let v4 = raw.family == 2
      let local = withUnsafeBytes(of: raw.saddr) { Array($0) }
      let remote = withUnsafeBytes(of: raw.daddr) { Array($0) }
      #expect(c.endpoints.local == address(v4 ? Array(local.prefix(4)) : local))
      #expect(c.endpoints.remote == address(v4 ? Array(remote.prefix(4)) : remote))

      let commBytes = withUnsafeBytes(of: raw.comm) { Array($0.prefix { $0 != 0 }) }
      let owner = flags & 1 != 0
        ? Owner(pid: raw.tgid, tid: raw.tid, comm: String(decoding: commBytes, as: UTF8.self), cgroupID: raw.cgroup_id)
        : nil
      let closeWaitSince = raw.ts_peer_close_wait_ns == 0 ? nil : raw.ts_peer_close_wait_ns
      if raw.kind == 4 {
        // A peer's close: the owner fields are the peer's, not the connection's.
        #expect(event.kind == .peerClose && c.owner == nil)
        #expect(event.peer == Peer(netns: raw.peer_netns, closeWaitSince: closeWaitSince, closedAt: raw.ts_ns, owner: owner))
      } else {
        #expect(c.owner == owner)
        #expect(event.peer == closeWaitSince.map { Peer(netns: raw.peer_netns, closeWaitSince: $0) })
      }
    }
  }
}

/// The address from its bytes in network order, built without the decoder's code.
private func address(_ bytes: [UInt8]) -> IPAddress {
  if bytes.count == 4 { return .v4(bytes[0], bytes[1], bytes[2], bytes[3]) }
  let word = { (range: Range<Int>) in bytes[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
  return .v6(high: word(0..<8), low: word(8..<16))
}

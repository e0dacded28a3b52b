import CFinwaitEvent
import FinwaitCore
import PropertyBased
import Testing

/// Bytes an iterator read could give: usually one record of random fields
/// with a valid family and state, sometimes any length.
private struct RawSettings: Sendable, CustomStringConvertible {
  var bytes: [UInt8]
  var hz: UInt64
  var description: String { "\(bytes) at \(hz) Hz" }
}

private let inputs = Generator { rng -> RawSettings in
  var r = fw_sock_settings()
  withUnsafeMutableBytes(of: &r) { raw in
    for i in raw.indices { raw[i] = UInt8.random(in: 0...255, using: &rng) }
  }
  if Int.random(in: 0..<8, using: &rng) != 0 { r.family = Bool.random(using: &rng) ? 2 : 10 }
  if Int.random(in: 0..<8, using: &rng) != 0 { r.state = UInt8.random(in: 1...12, using: &rng) }
  // The "not set" zeros and linger2's -1 are the values that matter most.
  if Bool.random(using: &rng) { r.keepalive_time = 0 }
  if Bool.random(using: &rng) { r.keepalive_intvl = 0 }
  // Kernel-sized values (int jiffies) as often as random 64-bit ones.
  if Bool.random(using: &rng) { r.keepalive_time = UInt64.random(in: 0...UInt64(Int32.max), using: &rng) }
  if Bool.random(using: &rng) { r.linger2 = Int64.random(in: 0...Int64(Int32.max), using: &rng) }
  if Bool.random(using: &rng) { r.keepalive_probes = 0 }
  if Bool.random(using: &rng) { r.cookie = 0 }
  switch Int.random(in: 0..<4, using: &rng) {
  case 0: r.linger2 = 0
  case 1: r.linger2 = -1
  default: break
  }
  var bytes = withUnsafeBytes(of: r) { Array($0) }
  if Int.random(in: 0..<8, using: &rng) == 0 {
    bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
    if Bool.random(using: &rng) { bytes += [UInt8.random(in: 0...255, using: &rng)] }
  }
  return RawSettings(bytes: bytes, hz: [100, 250, 300, 1000].randomElement(using: &rng) ?? 250)
}

@Suite struct SocketSettingsPropertyTests {
  @Test func anyInputDecodesToItsFieldsOrIsRejectedForWhatIsWrong() async {
    await propertyCheck(count: 3_000, input: inputs) { input in
      let decoded: Result<SocketSettings, SocketSettings.DecodeError>
      do {
        decoded = .success(try input.bytes.withUnsafeBytes { try SocketSettings(record: $0, hz: input.hz) })
      } catch let error as SocketSettings.DecodeError {
        decoded = .failure(error)
      } catch {
        Issue.record("not a DecodeError: \(error)")
        return
      }

      guard input.bytes.count == 96 else {
        #expect(decoded == .failure(.wrongLength(input.bytes.count)))
        return
      }
      var raw = fw_sock_settings()
      withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: input.bytes) }
      guard raw.family == 2 || raw.family == 10 else {
        #expect(decoded == .failure(.unknownFamily(raw.family)))
        return
      }
      guard (1...12).contains(raw.state) else {
        #expect(decoded == .failure(.unknownState(raw.state)))
        return
      }
      guard case let .success(s) = decoded else {
        Issue.record("a well-formed record was rejected: \(decoded)")
        return
      }
      let v4 = raw.family == 2
      let local = withUnsafeBytes(of: raw.saddr) { Array($0) }
      let remote = withUnsafeBytes(of: raw.daddr) { Array($0) }
      #expect(s.endpoints.local == address(v4 ? Array(local.prefix(4)) : local))
      #expect(s.endpoints.remote == address(v4 ? Array(remote.prefix(4)) : remote))
      #expect(s.endpoints.localPort == raw.sport && s.endpoints.remotePort == raw.dport)
      #expect(s.state.rawValue == raw.state && s.inode == raw.inode && s.netns == raw.netns)
      #expect(s.cookie == (raw.cookie == 0 ? nil : raw.cookie))
      #expect(s.keepalive == (raw.keepalive != 0))
      // Jiffies to ns exactly, saturating where a garbage value would overflow.
      func ns(_ jiffies: UInt64) -> UInt64? {
        guard jiffies != 0 else { return nil }
        let (product, overflow) = jiffies.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : product / input.hz
      }
      #expect(s.keepaliveIdle == ns(raw.keepalive_time))
      #expect(s.keepaliveInterval == ns(raw.keepalive_intvl))
      if raw.keepalive_time != 0, raw.keepalive_time <= UInt64(Int32.max) {
        // Kernel-sized: exact, and back to the same jiffies.
        #expect(s.keepaliveIdle.map { ($0 * input.hz + 999_999_999) / 1_000_000_000 } == raw.keepalive_time)
      }
      #expect(s.keepaliveProbes == (raw.keepalive_probes == 0 ? nil : raw.keepalive_probes))
      let linger2: SocketSettings.Linger2 =
        raw.linger2 < 0 ? .off : raw.linger2 == 0 ? .default : .nanoseconds(ns(UInt64(raw.linger2)) ?? 0)
      #expect(s.linger2 == linger2)
      #expect(s.userTimeoutMilliseconds == raw.user_timeout_ms && s.probesOut == raw.probes_out)
      #expect(s.shutdown.rawValue == raw.shutdown & 3)
    }
  }
}

private func address(_ bytes: [UInt8]) -> IPAddress {
  if bytes.count == 4 { return .v4(bytes[0], bytes[1], bytes[2], bytes[3]) }
  let word = { (range: Range<Int>) in bytes[range].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } }
  return .v6(high: word(0..<8), low: word(8..<16))
}

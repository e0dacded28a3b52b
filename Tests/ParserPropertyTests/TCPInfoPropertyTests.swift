#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore
import PropertyBased
import Testing

private let infos = Generator { rng -> TCPInfo in
  func u32() -> UInt32 { UInt32.random(in: 0...UInt32.max, using: &rng) }
  func u8() -> UInt8 { UInt8.random(in: 0...255, using: &rng) }
  return TCPInfo(
    options: TCPInfo.Options(rawValue: u8()), sendWindowScale: u8() & 0x0f, receiveWindowScale: u8() & 0x0f,
    retransmits: u8(), probes: u8(), backoff: u8(), rtoMicroseconds: u32(), lastDataSentMilliseconds: u32(),
    lastDataReceivedMilliseconds: u32(), lastAckReceivedMilliseconds: u32(), rttMicroseconds: u32(),
    totalRetransmits: u32(), bytesReceived: UInt64.random(in: 0...UInt64.max, using: &rng))
}

/// Struct sizes kernels have sent: 2.6 (104), 4.1+ (136 and up), 6.1 (232), 6.18 (248), and odd ones.
private let lengths = Generator { rng -> Int in
  [104, 136, 160, 232, 248, Int.random(in: 0...400, using: &rng)].randomElement(using: &rng) ?? 232
}

private func decode(_ bytes: [UInt8]) -> TCPInfo? { bytes.withUnsafeBytes { TCPInfo($0) } }

@Suite struct TCPInfoPropertyTests {
  @Test func everyLengthDecodesWhatItHoldsAndNothingMore() async {
    await propertyCheck(count: 500, input: infos, lengths) { info, length in
      var bytes = info.encoded(length: length)
      bytes = Array(bytes.prefix(length))
      guard length >= TCPInfo.minimumLength else {
        #expect(decode(bytes) == nil)
        return
      }
      var expected = info
      if length < 136 { expected.bytesReceived = nil }
      #expect(decode(bytes) == expected)
    }
  }

  @Test func garbageNeverTrapsAndEveryFieldComesFromItsOffset() async {
    let garbage = Generator { rng -> [UInt8] in
      (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }
    await propertyCheck(count: 500, input: garbage) { bytes in
      guard let info = decode(bytes) else {
        #expect(bytes.count < TCPInfo.minimumLength)
        return
      }
      // Re-encoding puts every decoded field back where it came from.
      let again = info.encoded(length: bytes.count)
      for offset in [2, 3, 4, 5, 6] { #expect(again[offset] == bytes[offset]) }
      for range in [8..<12, 44..<48, 52..<60, 68..<72, 100..<104] { #expect(again[range] == bytes[range]) }
      if bytes.count >= 136 { #expect(again[128..<136] == bytes[128..<136]) }
    }
  }

  /// The offsets agree with the C library's own struct tcp_info (which stops at
  /// tcpi_total_retrans): fields set there come out of the decoder unchanged.
  @Test func offsetsMatchTheCLibraryStruct() async {
    await propertyCheck(count: 200, input: infos) { info in
      var c = tcp_info()
      c.tcpi_retransmits = info.retransmits
      c.tcpi_probes = info.probes
      c.tcpi_backoff = info.backoff
      c.tcpi_options = info.options.rawValue
      c.tcpi_snd_wscale = info.sendWindowScale
      c.tcpi_rcv_wscale = info.receiveWindowScale
      c.tcpi_rto = info.rtoMicroseconds
      c.tcpi_last_data_sent = info.lastDataSentMilliseconds
      c.tcpi_last_data_recv = info.lastDataReceivedMilliseconds
      c.tcpi_last_ack_recv = info.lastAckReceivedMilliseconds
      c.tcpi_rtt = info.rttMicroseconds
      c.tcpi_total_retrans = info.totalRetransmits
      let bytes = withUnsafeBytes(of: c) { Array($0) }
      var expected = info
      expected.bytesReceived = nil
      #expect(bytes.count >= TCPInfo.minimumLength)
      #expect(decode(Array(bytes.prefix(TCPInfo.minimumLength))) == expected)
    }
  }
}

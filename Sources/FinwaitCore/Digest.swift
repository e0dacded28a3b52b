extension Endpoints {
  /// A 64-bit digest of a connection's namespace and endpoints, for tables of
  /// hundreds of thousands of sockets: 8 bytes each instead of an `Endpoints`
  /// (48) or a `DiagSocket`. A collision is one chance in 2^64 / sockets.
  public func digest(in netns: UInt32) -> UInt64 {
    var hasher = FNV1a()
    hasher.add(UInt64(netns))
    hasher.add(local)
    hasher.add(UInt64(localPort) << 16 | UInt64(remotePort))
    hasher.add(remote)
    return hasher.value
  }
}

/// Fixed and seedless, unlike Swift's Hasher: digests taken at different
/// times (a dump now, a map entry later) must agree.
private struct FNV1a {
  var value: UInt64 = 0xcbf2_9ce4_8422_2325

  mutating func add(_ word: UInt64) {
    for shift in stride(from: 0, to: 64, by: 8) {
      value ^= (word >> UInt64(shift)) & 0xff
      value &*= 0x100_0000_01b3
    }
  }

  mutating func add(_ address: IPAddress) {
    switch address {
    case let .v4(a, b, c, d):
      add(UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d))
    case let .v6(high, low):
      add(high)
      add(low)
    }
  }
}

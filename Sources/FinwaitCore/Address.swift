/// An IPv4 or IPv6 address held inline (no allocation per event).
public enum IPAddress: Sendable, Hashable {
  /// Network byte order, as the kernel stores it.
  case v4(UInt8, UInt8, UInt8, UInt8)
  case v6(high: UInt64, low: UInt64)

  public var family: Family { if case .v4 = self { .ipv4 } else { .ipv6 } }

  /// 127.0.0.0/8, ::1 or IPv4-mapped 127/8: exists in every network namespace.
  public var isLoopback: Bool {
    switch self {
    case let .v4(a, _, _, _): a == 127
    case let .v6(high, low): high == 0 && (low == 1 || low >> 24 == 0xffff7f)
    }
  }

  public enum Family: String, Sendable {
    case ipv4, ipv6
  }

  /// The kernel's layout (BPF records, inet_diag): network order, IPv4 in
  /// the first 4 of 16 bytes. `family` is AF_INET (2) or AF_INET6 (10);
  /// nil for any other. `bytes` must hold 16 bytes.
  public init?(family: UInt16, networkOrder bytes: UnsafeRawBufferPointer) {
    switch family {
    case 2:
      self = .v4(bytes[0], bytes[1], bytes[2], bytes[3])
    case 10:
      var high: UInt64 = 0
      var low: UInt64 = 0
      for i in 0..<8 {
        high = high << 8 | UInt64(bytes[i])
        low = low << 8 | UInt64(bytes[i + 8])
      }
      self = .v6(high: high, low: low)
    default:
      return nil
    }
  }
}

/// Both ends of a TCP connection, as seen from the socket being traced.
public struct Endpoints: Sendable, Hashable {
  public var local: IPAddress
  public var localPort: UInt16
  public var remote: IPAddress
  public var remotePort: UInt16

  public init(local: IPAddress, localPort: UInt16, remote: IPAddress, remotePort: UInt16) {
    self.local = local
    self.localPort = localPort
    self.remote = remote
    self.remotePort = remotePort
  }
}

extension IPAddress: CustomStringConvertible {
  /// Dotted quad, or RFC 5952 IPv6 text (longest zero run compressed).
  public var description: String {
    var line = LineBuffer(capacity: 48)
    line.append(self)
    return line.text
  }

  /// The 16-bit group `i` (0...7) of an IPv6 address.
  func group(_ i: Int) -> UInt16 {
    guard case let .v6(high, low) = self else { return 0 }
    let half = i < 4 ? high : low
    return UInt16(truncatingIfNeeded: half >> (48 - 16 * UInt64(i % 4)))
  }
}

extension LineBuffer {
  public mutating func append(_ address: IPAddress) {
    switch address {
    case let .v4(a, b, c, d):
      append(decimal: UInt64(a))
      append(ascii: ".")
      append(decimal: UInt64(b))
      append(ascii: ".")
      append(decimal: UInt64(c))
      append(ascii: ".")
      append(decimal: UInt64(d))
    case .v6:
      appendIPv6(address)
    }
  }

  private mutating func appendIPv6(_ address: IPAddress) {
    if (0..<5).allSatisfy({ address.group($0) == 0 }) && address.group(5) == 0xffff {
      append("::ffff:")
      let (g6, g7) = (address.group(6), address.group(7))
      append(.v4(UInt8(g6 >> 8), UInt8(g6 & 0xff), UInt8(g7 >> 8), UInt8(g7 & 0xff)))
      return
    }
    // The longest run of two or more zero groups becomes "::".
    var best = (start: 8, length: 0)
    var i = 0
    while i < 8 {
      guard address.group(i) == 0 else {
        i += 1
        continue
      }
      var j = i
      while j < 8 && address.group(j) == 0 { j += 1 }
      if j - i > best.length && j - i > 1 { best = (i, j - i) }
      i = j
    }
    for i in 0..<8 {
      if i == best.start { append("::") }
      if i >= best.start && i < best.start + best.length { continue }
      if i > 0 && i != best.start + best.length { append(ascii: ":") }
      append(hex: UInt64(address.group(i)))
    }
  }

  /// `addr:port`, with IPv6 addresses in brackets.
  public mutating func append(_ address: IPAddress, port: UInt16) {
    if case .v6 = address { append(ascii: "[") }
    append(address)
    if case .v6 = address { append(ascii: "]") }
    append(ascii: ":")
    append(decimal: UInt64(port))
  }
}

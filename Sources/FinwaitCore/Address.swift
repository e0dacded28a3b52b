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
    switch self {
    case let .v4(a, b, c, d):
      return "\(a).\(b).\(c).\(d)"
    case let .v6(high, low):
      var groups = [UInt16](repeating: 0, count: 8)
      for i in 0..<4 {
        groups[i] = UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64(i)))
        groups[i + 4] = UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64(i)))
      }
      if groups[0..<5].allSatisfy({ $0 == 0 }) && groups[5] == 0xffff {
        return "::ffff:\(groups[6] >> 8).\(groups[6] & 0xff).\(groups[7] >> 8).\(groups[7] & 0xff)"
      }
      var best = (start: -1, length: 0)
      var i = 0
      while i < 8 {
        guard groups[i] == 0 else { i += 1; continue }
        var j = i
        while j < 8 && groups[j] == 0 { j += 1 }
        if j - i > best.length && j - i > 1 { best = (i, j - i) }
        i = j
      }
      func hex(_ range: Range<Int>) -> String {
        groups[range].map { String($0, radix: 16) }.joined(separator: ":")
      }
      guard best.start >= 0 else { return hex(0..<8) }
      return hex(0..<best.start) + "::" + hex((best.start + best.length)..<8)
    }
  }
}

extension Endpoints {
  /// `addr:port`, with IPv6 addresses in brackets.
  public static func text(_ address: IPAddress, _ port: UInt16) -> String {
    switch address {
    case .v4: return "\(address):\(port)"
    case .v6: return "[\(address)]:\(port)"
    }
  }
}

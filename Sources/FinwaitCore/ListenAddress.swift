/// `--listen`: `HOST:PORT`, `[IPv6]:PORT`, or `:PORT` (loopback). Only
/// numeric addresses: a name would need a resolver at start.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
  public static let `default` = ListenAddress(host: "127.0.0.1", port: 9466)
  public var host: String
  public var port: UInt16

  public init(host: String, port: UInt16) {
    self.host = host
    self.port = port
  }

  public init?(_ text: String) {
    guard let colon = text.lastIndex(of: ":") else { return nil }
    var host = String(text[..<colon])
    guard let port = UInt16(text[text.index(after: colon)...]) else { return nil }
    if host.hasPrefix("[") && host.hasSuffix("]") {
      host = String(host.dropFirst().dropLast())
      // The rest of IPv6's syntax is checked when the socket is bound.
      guard host.contains(":"), host.utf8.allSatisfy({ isASCIIHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") })
      else { return nil }
    } else if host.isEmpty {
      host = "127.0.0.1"
    } else {
      let parts = host.split(separator: ".", omittingEmptySubsequences: false)
      guard parts.count == 4, parts.allSatisfy({ (1...3).contains($0.count) && UInt8($0) != nil }) else { return nil }
    }
    self.init(host: host, port: port)
  }

  public var isLoopback: Bool { host.hasPrefix("127.") || host == "::1" }

  public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

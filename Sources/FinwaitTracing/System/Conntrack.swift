#if canImport(Glibc)
import Glibc
#endif
import CFinwaitDiag
import FinwaitCore
import SystemPackage

/// Conntrack entries of TCP connections, asked of each network namespace's
/// conntrack over ctnetlink (NETLINK_NETFILTER), one entry per request, as
/// `conntrack -G` does. One socket per namespace, opened on first use.
/// Reading needs CAP_NET_ADMIN (nfnetlink checks it for every message).
public final class ConntrackTable {
  /// Whether a namespace's conntrack can be asked at all.
  public enum Availability: Sendable, Equatable {
    case available
    /// No nfnetlink or no ctnetlink in the kernel (module not loaded, or not built).
    case notLoaded
    /// The kernel refused: no CAP_NET_ADMIN.
    case notPermitted
  }

  private let entries: Namespaces
  private var sockets: [UInt32: Int32] = [:]
  private var sequence: UInt32 = 1
  private var buffer = [UInt8](repeating: 0, count: 1 << 13)

  public init(namespaces: Namespaces) {
    self.entries = namespaces
  }

  deinit {
    for fd in sockets.values { close(fd) }
  }

  /// Closes the namespace's socket (it keeps the namespace alive).
  public func release(_ netns: UInt32) {
    if let fd = sockets.removeValue(forKey: netns) { close(fd) }
  }

  /// Asks `netns` for an entry that cannot exist: ENOENT means conntrack
  /// answers; the errors that mean "not there" or "not allowed" become
  /// `notLoaded` or `notPermitted`. Any other failure throws.
  public func availability(netns: UInt32) throws(FinwaitError) -> Availability {
    let none = Endpoints(local: .v4(0, 0, 0, 0), localPort: 0, remote: .v4(0, 0, 0, 0), remotePort: 0)
    switch try ask(netns: netns, none, direction: .original) {
    case .answer: return .available
    case let .refused(reason): return reason
    }
  }

  /// The entry of `netns` whose original tuple is the socket's view (the
  /// socket opened the connection) or whose reply tuple is (the socket is
  /// the server, behind a DNAT or not); nil if conntrack has neither. One
  /// request covers both: the kernel looks a tuple up in one hash of both
  /// directions (nf_conntrack_find_get), whichever attribute carries it; a
  /// GET by CTA_TUPLE_ORIG holding a reply tuple returns the entry (Linux 6.18).
  public func lookup(netns: UInt32, _ socket: Endpoints) throws(FinwaitError) -> ConntrackEntry? {
    switch try ask(netns: netns, socket, direction: .original) {
    case let .answer(entry): return entry
    case .refused(.notPermitted):
      throw .diag("conntrack in network namespace \(netns): permission denied (ctnetlink needs CAP_NET_ADMIN)")
    case .refused:
      throw .diag("conntrack in network namespace \(netns): not available (nf_conntrack_netlink not loaded)")
    }
  }

  private enum Outcome {
    case answer(ConntrackEntry?)
    case refused(Availability)
  }

  private func ask(netns: UInt32, _ tuple: Endpoints, direction: ConntrackMessages.Direction) throws(FinwaitError) -> Outcome {
    let fd: Int32
    switch try socket(for: netns) {
    case let .socket(opened): fd = opened
    case let .refused(reason): return .refused(reason)
    }
    sequence &+= 1
    let request = ConntrackMessages.getRequest(tuple, direction: direction, sequence: sequence)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else {
      let error = Errno(rawValue: errno)
      release(netns)
      throw .diag("conntrack request in network namespace \(netns): \(error)")
    }
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else {
      let error = n == 0 ? "closed" : "\(Errno(rawValue: errno))"
      // A late reply must not be read as the answer to the next request.
      release(netns)
      throw .diag("conntrack reply in network namespace \(netns): \(error)")
    }
    do {
      return .answer(try buffer.withUnsafeBytes { try ConntrackMessages.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) })
    } catch let error as ConntrackMessages.ParseError {
      if case let .kernel(code) = error, let reason = Self.refusal(Errno(rawValue: code)) { return .refused(reason) }
      release(netns)
      throw .diag("conntrack reply in network namespace \(netns) malformed: \(error)")
    } catch {
      throw .diag("conntrack reply in network namespace \(netns): \(error)")
    }
  }

  /// The errors that say conntrack cannot be asked here, as opposed to a
  /// failure of this one request.
  static func refusal(_ error: Errno) -> Availability? {
    switch error {
    case .notPermitted: .notPermitted
    // socket(): no nfnetlink. EINVAL: nfnetlink has no ctnetlink subsystem
    // (the request itself is always well formed). Newer kernels say EOPNOTSUPP.
    case .protocolNotSupported, .invalidArgument, .notSupported: .notLoaded
    default: nil
    }
  }

  private enum Opened {
    case socket(Int32)
    case refused(Availability)
  }

  private func socket(for netns: UInt32) throws(FinwaitError) -> Opened {
    if let fd = sockets[netns] { return .socket(fd) }
    guard let fd = entries.withNamespace(netns, { fw_netlink_socket($0, NETLINK_NETFILTER) }) else {
      throw .diag("network namespace \(netns) cannot be entered (no process or /run/netns entry)")
    }
    guard fd >= 0 else {
      if let reason = Self.refusal(Errno(rawValue: -fd)) { return .refused(reason) }
      throw .diag("conntrack socket in network namespace \(netns): \(Errno(rawValue: -fd))")
    }
    sockets[netns] = fd
    return .socket(fd)
  }
}

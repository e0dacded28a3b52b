#if canImport(Glibc)
import Glibc
#endif
import CFinwaitDiag
import FinwaitCore
import SystemPackage

/// Dumps TCP sockets through NETLINK_SOCK_DIAG, per network namespace, as
/// `ss` does. One socket per namespace, opened on first use.
public final class SockDiag: SocketTable {
  public static func mask(_ states: [DiagSocket.State]) -> UInt32 {
    states.reduce(0) { $0 | 1 << UInt32($1.rawValue) }
  }

  private let entries: Namespaces
  private var sockets: [UInt32: Int32] = [:]
  private var sequence: UInt32 = 1
  private var buffer = [UInt8](repeating: 0, count: 1 << 16)

  public init(namespaces: Namespaces = Namespaces()) {
    self.entries = namespaces
  }

  deinit {
    for fd in sockets.values { close(fd) }
  }

  /// Closes the namespace's socket (it keeps the namespace alive).
  public func release(_ netns: UInt32) {
    if let fd = sockets.removeValue(forKey: netns) { close(fd) }
  }

  public var ownNamespace: UInt32 { entries.own }

  public func namespaces() -> [UInt32] { entries.all() }

  public func finTimeout(of netns: UInt32) -> UInt64? { entries.finTimeout(of: netns) }

  public func owners() -> SocketOwners { SocketOwners.scan() }

  /// Calls `body` with each IPv4 and IPv6 TCP socket of `netns` in `states`,
  /// as each reply arrives: nothing is gathered.
  public func forEach(netns: UInt32, states: UInt32, _ body: (DiagSocket) -> Void) throws(FinwaitError) {
    let fd = try socket(for: netns)
    for family: UInt8 in [2, 10] {
      do {
        try dump(fd: fd, family: family, states: states, body)
      } catch {
        release(netns)
        throw error
      }
    }
  }

  /// The TCP socket of `netns` with `endpoints`, in whatever state; nil if none.
  public func lookup(netns: UInt32, endpoints: Endpoints) throws(FinwaitError) -> DiagSocket? {
    let fd = try socket(for: netns)
    sequence &+= 1
    let request = SockDiagMessages.lookupRequest(endpoints, sequence: sequence)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else { throw .diag("sock_diag request: \(Errno(rawValue: errno))") }
    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { throw .diag("sock_diag reply: \(n == 0 ? "closed" : "\(Errno(rawValue: errno))")") }
    let batch: SockDiagMessages.Batch
    do {
      batch = try buffer.withUnsafeBytes { try SockDiagMessages.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    } catch let error as SockDiagMessages.ParseError where error == .kernel(errno: Errno.noSuchFileOrDirectory.rawValue) {
      return nil
    } catch {
      throw .diag("sock_diag reply malformed: \(error)")
    }
    return batch.sockets.first
  }

  private func socket(for netns: UInt32) throws(FinwaitError) -> Int32 {
    if let fd = sockets[netns] { return fd }
    guard let fd = entries.withNamespace(netns, { fw_diag_socket($0) }) else {
      throw .diag("network namespace \(netns) cannot be entered (no process or /run/netns entry)")
    }
    guard fd >= 0 else { throw .diag("sock_diag socket in namespace \(netns): \(Errno(rawValue: -fd))") }
    sockets[netns] = fd
    return fd
  }

  private func dump(fd: Int32, family: UInt8, states: UInt32, _ body: (DiagSocket) -> Void) throws(FinwaitError) {
    sequence &+= 1
    let request = SockDiagMessages.dumpRequest(family: family, states: states, sequence: sequence)
    let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    guard sent == request.count else { throw .diag("sock_diag request: \(Errno(rawValue: errno))") }
    while true {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      guard n > 0 else { throw .diag("sock_diag reply: \(n == 0 ? "closed" : "\(Errno(rawValue: errno))")") }
      let batch: SockDiagMessages.Batch
      do {
        batch = try buffer.withUnsafeBytes { try SockDiagMessages.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
      } catch {
        throw .diag("sock_diag reply malformed: \(error)")
      }
      batch.sockets.forEach(body)
      if batch.done { return }
    }
  }
}

import FinwaitCore

/// The node's TCP sockets, per network namespace, and who holds them: what
/// reconciliation, snapshots and the map audit read. sock_diag and /proc in
/// production (`SockDiag`), a scripted table in tests.
public protocol SocketTable: AnyObject {
  /// finwait's own network namespace.
  var ownNamespace: UInt32 { get }
  /// Every namespace that can be entered now, own first.
  func namespaces() -> [UInt32]
  /// The namespace's net.ipv4.tcp_fin_timeout, in nanoseconds.
  func finTimeout(of netns: UInt32) -> UInt64?
  /// Calls `body` with each TCP socket of `netns` in `states` (a mask of
  /// `DiagSocket.State`), as each arrives.
  func forEach(netns: UInt32, states: UInt32, _ body: (DiagSocket) -> Void) throws(FinwaitError)
  /// The TCP socket of `netns` with `endpoints`, in whatever state; nil if none.
  func lookup(netns: UInt32, endpoints: Endpoints) throws(FinwaitError) -> DiagSocket?
  /// Lets go of what keeps `netns` open.
  func release(_ netns: UInt32)
  /// Which process holds each socket inode, scanned now.
  func owners() -> SocketOwners
}

extension SocketTable {
  public func dump(netns: UInt32, states: UInt32) throws(FinwaitError) -> [DiagSocket] {
    var all: [DiagSocket] = []
    try forEach(netns: netns, states: states) { all.append($0) }
    return all
  }
}

/// The command-line filters, for what does not pass through the BPF program's
/// own (records built from sock_diag dumps).
public struct RecordFilter: Sendable {
  public var pid: UInt32?
  public var comm: String?
  public var port: UInt16?
  /// 4 or 6.
  public var family: Int?
  public var netns: UInt32?

  public init(pid: UInt32? = nil, comm: String? = nil, port: UInt16? = nil, family: Int? = nil, netns: UInt32? = nil) {
    self.pid = pid
    self.comm = comm
    self.port = port
    self.family = family
    self.netns = netns
  }

  public func matches(_ r: Record) -> Bool {
    let c = r.connection
    if let pid, c.owner?.pid != pid { return false }
    if let comm, c.owner?.comm != comm { return false }
    if let port, c.endpoints.localPort != port && c.endpoints.remotePort != port { return false }
    if let family, (family == 4) != (c.endpoints.local.family == .ipv4) { return false }
    if let netns, c.netns != netns { return false }
    return true
  }
}

/// The default output: a header, then one line per record.
public struct TextFormat: Sendable {
  public let clock: WallClock

  public init(clock: WallClock) {
    self.clock = clock
  }

  public var header: String {
    pad("TIME", right: 9) + pad("PID", right: 8) + pad("COMM", right: 16) + pad("PATH", right: 14)
      + pad("CONNECTION (local > remote)", right: 44) + pad("SOCKET", right: 10)
      + pad("DWELL", right: 10) + "END"
  }

  public func line(_ r: Record) -> String {
    let pid = r.connection.owner.map { String($0.pid) } ?? "?"
    let comm = r.connection.owner?.comm ?? "?"
    return pad(clock.clockTime(ofMonotonic: r.timestamp), right: 9) + pad(pid, right: 8)
      + pad(comm, right: 16) + pad(Self.pathText(r), right: 14)
      + pad(Self.connectionText(r.connection.endpoints), right: 44) + pad(Self.socketText(r), right: 10)
      + pad(Self.dwellText(r.dwell), right: 10) + Self.endText(r)
  }

  /// `close` names the syscall when it was not close() itself (dup2, execve, ...).
  static func pathText(_ r: Record) -> String {
    guard r.connection.path == .close, r.connection.syscall != .close, r.connection.syscall != .unknown else { return r.connection.path.rawValue }
    return "close(\(r.connection.syscall.rawValue))"
  }

  static func connectionText(_ e: Endpoints) -> String {
    Endpoints.text(e.local, e.localPort) + " > " + Endpoints.text(e.remote, e.remotePort)
  }

  static func socketText(_ r: Record) -> String {
    switch (r.connection.orphanedAtEntry, r.orphaned) {
    case (false, false): "attached"
    case (false, true): "att>orph"
    case (true, _): "orphan"
    }
  }

  static func dwellText(_ d: Dwell) -> String {
    switch d {
    case let .exact(ns): formatDuration(nanoseconds: ns)
    case let .atLeast(ns): ">=" + formatDuration(nanoseconds: ns)
    case .pending: "pending"
    }
  }

  static func endText(_ r: Record) -> String {
    switch (r.kind, r.end) {
    case (.stuck, _): "STUCK (still in FIN_WAIT2)"
    case (_, .timewaitOrphan?): "timewait_orphan (FIN_WAIT2 goes on in timewait)"
    case let (_, end?): end.rawValue
    case (_, nil): ""
    }
  }
}

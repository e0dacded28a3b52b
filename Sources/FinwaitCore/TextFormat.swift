/// The default output: a header, then one line per record.
public struct TextFormat: Sendable {
  public let clock: WallClock
  /// finwait's own network namespace: others are named on each line.
  public let ownNetns: UInt32

  public init(clock: WallClock, ownNetns: UInt32 = 0) {
    self.clock = clock
    self.ownNetns = ownNetns
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
      + pad(Self.dwellText(r.dwell), right: 10) + Self.endText(r, clock: clock) + details(r)
  }

  /// Where it is and who is on the other end, when that is known.
  func details(_ r: Record) -> String {
    var text = ""
    if r.connection.netns != ownNetns && r.connection.netns != 0 { text += " netns=\(r.connection.netns)" }
    if let peer = r.peer {
      text += " peer=" + (peer.owner.map { "\($0.pid)/\($0.comm)" } ?? "local")
      if let wait = peer.closeWait(now: r.timestamp) {
        text += (peer.closedAt == nil ? " close_wait>=" : " close_wait=") + formatDuration(nanoseconds: wait)
      }
    }
    return text
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

  static func endText(_ r: Record, clock: WallClock) -> String {
    let deadline = r.deadline.map { " (timewait until " + clock.clockTime(ofMonotonic: $0) + ")" } ?? ""
    switch (r.kind, r.end) {
    case (.stuck, _): return "STUCK (still in FIN_WAIT2)"
    case (.existing, _): return "EXISTING" + deadline
    case (_, .timewaitOrphan?): return "timewait_orphan (FIN_WAIT2 goes on in timewait)"
    case let (_, end?): return end.rawValue + deadline
    case (_, nil): return ""
    }
  }
}

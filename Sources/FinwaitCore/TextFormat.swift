/// The default output: a header, then one line per record.
public struct TextFormat: Sendable {
  public let clock: WallClock
  /// finwait's own network namespace: others are named on each line.
  public let ownNetns: UInt32
  private var seconds = SecondText(.localTimeOfDay)

  public init(clock: WallClock, ownNetns: UInt32 = 0) {
    self.clock = clock
    self.ownNetns = ownNetns
  }

  static let columns: [(title: String, width: Int)] = [
    ("TIME", 9), ("PID", 8), ("COMM", 16), ("PATH", 14), ("CONNECTION (local > remote)", 44), ("SOCKET", 10),
    ("DWELL", 10), ("END", 0),
  ]

  public var header: String {
    var line = LineBuffer()
    for column in Self.columns {
      let start = line.count
      line.append(column.title)
      line.pad(from: start, to: column.width)
    }
    return line.text
  }

  public func line(_ r: Record) -> String {
    var copy = self
    var line = LineBuffer()
    copy.write(r, to: &line)
    return line.text
  }

  /// Appends the record's line (without the newline).
  public mutating func write(_ r: Record, to line: inout LineBuffer) {
    var start = line.count
    func next(_ column: Int, _ line: inout LineBuffer) {
      // A field wider than its column (close(close_range)) still gets a space.
      line.pad(from: start, to: Self.columns[column].width)
      if line.last != UInt8(ascii: " ") { line.append(ascii: " ") }
      start = line.count
    }
    line.append(clockTimeOfMonotonic: r.timestamp, clock: clock, cache: &seconds)
    next(0, &line)
    if let owner = r.connection.owner { line.append(decimal: UInt64(owner.pid)) } else { line.append(ascii: "?") }
    next(1, &line)
    line.append(r.connection.owner?.comm ?? "?")
    next(2, &line)
    Self.writePath(r, to: &line)
    next(3, &line)
    let e = r.connection.endpoints
    line.append(e.local, port: e.localPort)
    line.append(" > ")
    line.append(e.remote, port: e.remotePort)
    next(4, &line)
    line.append(Self.socketText(r))
    next(5, &line)
    Self.writeDwell(r.dwell, to: &line)
    next(6, &line)
    writeEnd(r, to: &line)
    writeDetails(r, to: &line)
  }

  /// Where it is and who is on the other end, when that is known.
  func writeDetails(_ r: Record, to line: inout LineBuffer) {
    Self.writeWorkload(r.workload, peer: false, to: &line)
    if r.connection.netns != ownNetns && r.connection.netns != 0 {
      line.append(" netns=")
      line.append(decimal: UInt64(r.connection.netns))
    }
    if let peer = r.peer { Self.writePeer(peer, workload: r.peerWorkload, at: r.timestamp, to: &line) }
    if let stack = r.stack {
      line.append(" stack=")
      line.append(stack.compactText)
    }
  }

  static func writePeer(_ peer: Peer, workload: Workload?, at now: UInt64, to line: inout LineBuffer) {
    line.append(" peer=")
    if let owner = peer.owner {
      line.append(decimal: UInt64(owner.pid))
      line.append(ascii: "/")
      line.append(owner.comm)
    } else {
      line.append("local")
    }
    writeWorkload(workload, peer: true, to: &line)
    if let wait = peer.closeWait(now: now) {
      line.append(peer.closedAt == nil ? " close_wait>=" : " close_wait=")
      line.append(duration: wait)
    }
  }

  /// ` container=<12 digits> pod=<uid>`, `peer_`-prefixed for the peer's.
  static func writeWorkload(_ workload: Workload?, peer: Bool, to line: inout LineBuffer) {
    if let id = workload?.container {
      line.append(peer ? " peer_container=" : " container=")
      line.append(id, digits: 12)
    }
    if let uid = workload?.pod {
      line.append(peer ? " peer_pod=" : " pod=")
      line.append(uid)
    }
  }

  /// `close` names the syscall when it was not close() itself (dup2, execve, ...).
  static func writePath(_ r: Record, to line: inout LineBuffer) {
    let c = r.connection
    guard c.path == .close, c.syscall != .close, c.syscall != .unknown else {
      line.append(c.path.rawValue)
      return
    }
    line.append("close(")
    line.append(c.syscall.rawValue)
    line.append(ascii: ")")
  }

  static func socketText(_ r: Record) -> StaticString {
    switch (r.connection.orphanedAtEntry, r.orphaned) {
    case (false, false): "attached"
    case (false, true): "att>orph"
    case (true, _): "orphan"
    }
  }

  static func writeDwell(_ d: Dwell, to line: inout LineBuffer) {
    switch d {
    case let .exact(ns): line.append(duration: ns)
    case let .atLeast(ns):
      line.append(">=")
      line.append(duration: ns)
    case .pending: line.append("pending")
    }
  }

  mutating func writeEnd(_ r: Record, to line: inout LineBuffer) {
    switch (r.kind, r.end) {
    case (.stuck, _): line.append("STUCK (still in FIN_WAIT2)")
    case (.existing, _):
      line.append("EXISTING")
      writeDeadline(r, to: &line)
    case (_, .timewaitOrphan?): line.append("timewait_orphan (FIN_WAIT2 goes on in timewait)")
    case let (_, end?):
      line.append(end.rawValue)
      writeDeadline(r, to: &line)
    case (_, nil): break
    }
  }

  private mutating func writeDeadline(_ r: Record, to line: inout LineBuffer) {
    guard let deadline = r.deadline else { return }
    line.append(" (timewait until ")
    line.append(clockTimeOfMonotonic: deadline, clock: clock, cache: &seconds)
    line.append(ascii: ")")
  }
}

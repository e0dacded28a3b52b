/// `--json`: one object per line. Every key is documented in docs/json.md,
/// and docs/finwait.schema.json checks them (Tests/schema/validate.py).
public struct JSONFormat: Sendable {
  public let clock: WallClock
  private var seconds = SecondText(.utcDateTime)

  public init(clock: WallClock) {
    self.clock = clock
  }

  public func line(_ r: Record) -> String {
    var copy = self
    var line = LineBuffer()
    copy.write(r, to: &line)
    return line.text
  }

  /// `{"type":"ready","time":...,"mode":"trace"}`: attached, and the
  /// connections that existed adopted. Scripts wait for it, not for text.
  public mutating func writeReady(mode: String, at now: UInt64, to o: inout LineBuffer) {
    o.append(ascii: "{")
    o.json("type", string: "ready")
    o.json("time") { $0.append(rfc3339OfMonotonic: now, clock: clock, cache: &seconds) }
    o.json("mode", string: mode)
    o.append(ascii: "}")
  }

  /// Appends the record's object (without the newline).
  public mutating func write(_ r: Record, to o: inout LineBuffer) {
    o.append(ascii: "{")
    o.json("type", string: r.kind.rawValue)
    o.json("time") { $0.append(rfc3339OfMonotonic: r.timestamp, clock: clock, cache: &seconds) }
    if let owner = r.connection.owner {
      o.json("pid", number: UInt64(owner.pid))
      o.json("tid", number: UInt64(owner.tid))
      o.json("comm", string: owner.comm)
      o.json("cgroup_id", number: owner.cgroupID)
      if let id = r.workload?.container { o.json("container_id") { $0.append(id) } }
      if let uid = r.workload?.pod { o.json("pod_uid") { $0.append(uid) } }
    } else {
      o.jsonNull("pid")
      o.jsonNull("tid")
      o.jsonNull("comm")
      o.jsonNull("cgroup_id")
    }
    let e = r.connection.endpoints
    o.json("family", string: e.local.family.rawValue)
    o.json("saddr") { $0.append(e.local) }
    o.json("sport", number: UInt64(e.localPort))
    o.json("daddr") { $0.append(e.remote) }
    o.json("dport", number: UInt64(e.remotePort))
    o.json("path", string: r.connection.path.rawValue)
    o.json("syscall", string: r.connection.syscall.rawValue)
    o.json("syscall_nr", signed: Int64(r.connection.syscallNumber))
    o.json("orphaned", bool: r.orphaned)
    o.json("orphaned_at_entry", bool: r.connection.orphanedAtEntry)
    switch r.dwell {
    case let .exact(ns):
      o.json("dwell_ns", number: ns)
    case let .atLeast(ns):
      o.json("dwell_ns", number: ns)
      o.json("dwell_lower_bound", bool: true)
    case let .pending(observed):
      // Not a dwell: FIN_WAIT2 goes on inside a timewait socket.
      o.jsonNull("dwell_ns")
      o.json("dwell_pending", bool: true)
      o.json("fullsock_dwell_ns", number: observed)
    }
    if let end = r.end { o.json("end", string: end.rawValue) }
    o.json("netns", number: UInt64(r.connection.netns))
    if let deadline = r.deadline {
      o.json("deadline") { $0.append(rfc3339OfMonotonic: deadline, clock: clock, cache: &seconds) }
    }
    if let peer = r.peer { writePeer(peer, workload: r.peerWorkload, at: r.timestamp, to: &o) }
    if let stack = r.stack {
      o.json("stack_id", number: UInt64(stack.id))
      o.jsonKey("stack")
      o.append(stack.json)
    }
    if r.connection.socket != 0 {
      o.json("socket") {
        $0.append("0x")
        $0.append(hex: r.connection.socket)
      }
    }
    o.append(ascii: "}")
  }

  private func writePeer(_ peer: Peer, workload: Workload?, at now: UInt64, to o: inout LineBuffer) {
    if let owner = peer.owner {
      o.json("peer_pid", number: UInt64(owner.pid))
      o.json("peer_comm", string: owner.comm)
      if let id = workload?.container { o.json("peer_container_id") { $0.append(id) } }
      if let uid = workload?.pod { o.json("peer_pod_uid") { $0.append(uid) } }
    } else {
      o.jsonNull("peer_pid")
      o.jsonNull("peer_comm")
    }
    if let wait = peer.closeWait(now: now) { o.json("peer_close_wait_ns", number: wait) }
    o.json("peer_closed", bool: peer.closedAt != nil)
    o.json("peer_netns", number: UInt64(peer.netns))
  }
}

/// A flat JSON object built by appending (the summary, with keys known only
/// at run time); strings are escaped per RFC 8259.
public struct JSONObject {
  private var line = LineBuffer()

  public init() {
    line.append(ascii: "{")
  }

  public mutating func add(_ k: String, string value: String) {
    line.jsonKey(k)
    line.appendJSONQuoted(value)
  }

  public mutating func add(_ k: String, number value: UInt64) {
    line.jsonKey(k)
    line.append(decimal: value)
  }

  public mutating func add(_ k: String, signed value: Int64) {
    line.jsonKey(k)
    line.append(decimal: value)
  }

  public mutating func add(_ k: String, bool value: Bool) {
    line.jsonKey(k)
    line.append(value ? "true" : "false")
  }

  public mutating func add(_ k: String, raw json: String) {
    line.jsonKey(k)
    line.append(json)
  }

  public mutating func addNull(_ k: String) {
    line.jsonKey(k)
    line.append("null")
  }

  /// The object text with its closing brace.
  public var closed: String {
    var copy = line
    copy.append(ascii: "}")
    return copy.text
  }
}

extension LineBuffer {
  /// `"key":`, after a comma unless it is the object's first key.
  mutating func jsonKey(_ k: StaticString) {
    if last != UInt8(ascii: "{") { append(ascii: ",") }
    append(ascii: "\"")
    append(k)
    append("\":")
  }

  mutating func jsonKey(_ k: String) {
    if last != UInt8(ascii: "{") { append(ascii: ",") }
    appendJSONQuoted(k)
    append(ascii: ":")
  }

  mutating func json(_ k: StaticString, string value: String) {
    jsonKey(k)
    appendJSONQuoted(value)
  }

  mutating func json(_ k: StaticString, number value: UInt64) {
    jsonKey(k)
    append(decimal: value)
  }

  mutating func json(_ k: StaticString, signed value: Int64) {
    jsonKey(k)
    append(decimal: value)
  }

  mutating func json(_ k: StaticString, bool value: Bool) {
    jsonKey(k)
    append(value ? "true" : "false")
  }

  /// A string value written in place by `value`, for text that never needs
  /// escaping (times, addresses, hex): no String is built for it.
  mutating func json(_ k: StaticString, quoted value: (inout LineBuffer) -> Void) {
    jsonKey(k)
    append(ascii: "\"")
    value(&self)
    append(ascii: "\"")
  }

  mutating func jsonNull(_ k: StaticString) {
    jsonKey(k)
    append("null")
  }

  /// A JSON string: quotes, backslashes and control characters escaped;
  /// other UTF-8 passes through.
  mutating func appendJSONQuoted(_ s: String) {
    append(ascii: "\"")
    // Nearly every string (comm, names) needs no escape: one bulk copy.
    guard s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
      append(s)
      append(ascii: "\"")
      return
    }
    for byte in s.utf8 {
      switch byte {
      case UInt8(ascii: "\""): append("\\\"")
      case UInt8(ascii: "\\"): append("\\\\")
      case UInt8(ascii: "\n"): append("\\n")
      case UInt8(ascii: "\r"): append("\\r")
      case UInt8(ascii: "\t"): append("\\t")
      case ..<0x20:
        append("\\u00")
        append(hex: UInt64(byte >> 4))
        append(hex: UInt64(byte & 0xf))
      default: append(byte: byte)
      }
    }
    append(ascii: "\"")
  }
}

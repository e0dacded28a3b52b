/// `--json`: one object per line. Keys are documented in the README.
public struct JSONFormat: Sendable {
  public let clock: WallClock

  public init(clock: WallClock) {
    self.clock = clock
  }

  public func line(_ r: Record) -> String {
    var o = JSONObject()
    o.add("type", string: r.kind.rawValue)
    o.add("time", string: clock.rfc3339(ofMonotonic: r.timestamp))
    if let owner = r.connection.owner {
      o.add("pid", number: UInt64(owner.pid))
      o.add("tid", number: UInt64(owner.tid))
      o.add("comm", string: owner.comm)
      o.add("cgroup_id", number: owner.cgroupID)
    } else {
      for key in ["pid", "tid", "comm", "cgroup_id"] { o.addNull(key) }
    }
    o.add("family", string: r.connection.endpoints.local.family.rawValue)
    o.add("saddr", string: r.connection.endpoints.local.description)
    o.add("sport", number: UInt64(r.connection.endpoints.localPort))
    o.add("daddr", string: r.connection.endpoints.remote.description)
    o.add("dport", number: UInt64(r.connection.endpoints.remotePort))
    o.add("path", string: r.connection.path.rawValue)
    o.add("syscall", string: r.connection.syscall.rawValue)
    o.add("syscall_nr", signed: Int64(r.connection.syscallNumber))
    o.add("orphaned", bool: r.orphaned)
    o.add("orphaned_at_entry", bool: r.connection.orphanedAtEntry)
    switch r.dwell {
    case let .exact(ns):
      o.add("dwell_ns", number: ns)
    case let .atLeast(ns):
      o.add("dwell_ns", number: ns)
      o.add("dwell_lower_bound", bool: true)
    case let .pending(observed):
      // Not a dwell: FIN_WAIT2 goes on inside a timewait socket.
      o.addNull("dwell_ns")
      o.add("dwell_pending", bool: true)
      o.add("fullsock_dwell_ns", number: observed)
    }
    if let end = r.end { o.add("end", string: end.rawValue) }
    o.add("netns", number: UInt64(r.connection.netns))
    if let deadline = r.deadline { o.add("deadline", string: clock.rfc3339(ofMonotonic: deadline)) }
    if let peer = r.peer {
      if let owner = peer.owner {
        o.add("peer_pid", number: UInt64(owner.pid))
        o.add("peer_comm", string: owner.comm)
      } else {
        o.addNull("peer_pid")
        o.addNull("peer_comm")
      }
      if let wait = peer.closeWait(now: r.timestamp) { o.add("peer_close_wait_ns", number: wait) }
      o.add("peer_closed", bool: peer.closedAt != nil)
      o.add("peer_netns", number: UInt64(peer.netns))
    }
    if r.connection.socket != 0 { o.add("socket", string: "0x" + String(r.connection.socket, radix: 16)) }
    return o.closed
  }
}

/// A flat JSON object built by appending; strings are escaped per RFC 8259.
public struct JSONObject {
  public private(set) var text = "{"

  public init() {
    text.reserveCapacity(512)
  }

  private mutating func key(_ k: String) {
    if text.utf8.count > 1 { text += "," }
    text += "\""
    text += k
    text += "\":"
  }

  public mutating func add(_ k: String, string value: String) {
    key(k)
    Self.appendQuoted(value, to: &text)
  }

  public mutating func add(_ k: String, number value: UInt64) {
    key(k)
    text += String(value)
  }

  public mutating func add(_ k: String, signed value: Int64) {
    key(k)
    text += String(value)
  }

  public mutating func add(_ k: String, bool value: Bool) {
    key(k)
    text += value ? "true" : "false"
  }

  public mutating func add(_ k: String, raw json: String) {
    key(k)
    text += json
  }

  public mutating func addNull(_ k: String) {
    key(k)
    text += "null"
  }

  /// The object text with its closing brace.
  public var closed: String { text + "}" }

  static func appendQuoted(_ s: String, to out: inout String) {
    out += "\""
    for scalar in s.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        out += "\\u00" + digits(Int(scalar.value >> 4), 1) + String(scalar.value & 0xf, radix: 16)
      default: out.unicodeScalars.append(scalar)
      }
    }
    out += "\""
  }
}

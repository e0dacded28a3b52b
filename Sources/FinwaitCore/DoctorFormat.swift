/// What `finwait doctor` prints: a report a person reads in one screen, most
/// urgent group first, or one JSON object per run (docs/doctor.md).
public struct DoctorFormat: Sendable {
  public let clock: WallClock
  /// Example connections shown per group in text (all with `--verbose`).
  public var examples: Int
  /// Groups shown in text before "N more groups".
  public var maxGroups: Int
  /// The text stops before a group that would not fit (the first is always
  /// shown); nil: no limit (`-v`).
  public var screen: Screen?

  /// A terminal: rows, and the columns after which a line wraps.
  public struct Screen: Sendable {
    public var rows: Int
    public var columns: Int

    /// What the report is made to fit: a maximised terminal on a laptop.
    public static let standard = Screen(rows: 50, columns: 160)

    /// Rows `line` takes once wrapped.
    func rows(_ line: String) -> Int { max(1, (line.utf8.count + columns - 1) / columns) }
  }

  public init(clock: WallClock, examples: Int = 1, maxGroups: Int = 5, screen: Screen? = .standard) {
    self.clock = clock
    self.examples = examples
    self.maxGroups = maxGroups
    self.screen = screen
  }

  // MARK: Text

  public func text(_ d: Diagnosis) -> [String] {
    var lines: [String] = []
    let node = d.node
    lines.append("finwait doctor: \(d.finWait2) in FIN_WAIT2, \(d.closeWait) in CLOSE_WAIT, "
      + "\(d.namespaces) network namespace\(d.namespaces == 1 ? "" : "s"); node: \(sysctlText(node))")
    lines += namespaceSysctlsText(d)
    if d.groups.isEmpty {
      lines.append(d.finWait2 + d.closeWait == 0 ? "Nothing to diagnose: no connection is in FIN_WAIT2 or CLOSE_WAIT."
                   : "Nothing to diagnose: none of them matches the filters.")
      return lines
    }
    let counts = Dictionary(grouping: d.groups, by: \.severity).mapValues(\.count)
    lines.append("\(d.groups.count) group\(d.groups.count == 1 ? "" : "s"): "
      + [Doctor.Severity.leak, .bounded, .healthy].compactMap { s in counts[s].map { "\($0) \(s.rawValue)" } }
        .joined(separator: ", "))
    var shown = 0
    var used = lines.reduce(0) { $0 + (screen?.rows($1) ?? 1) }
    for (n, g) in d.groups.prefix(maxGroups).enumerated() {
      let group = [""] + groupText(g, number: n + 1, diagnosis: d)
      let rows = group.reduce(0) { $0 + (screen?.rows($1) ?? 1) }
      // Room for this group, and for the "more" lines after it if others follow.
      if let screen, shown > 0, used + rows + (n + 1 < d.groups.count ? 2 : 0) > screen.rows { break }
      used += rows
      lines += group
      shown += 1
    }
    if d.groups.count > shown {
      let more = d.groups.count - shown
      lines.append("")
      lines.append("\(more) more group\(more == 1 ? "" : "s"): see -v or --json, or narrow with --pid/--comm/--port/--netns.")
    }
    return lines
  }

  func groupText(_ g: DiagnosisGroup, number: Int, diagnosis d: Diagnosis) -> [String] {
    let first = g.findings[0]
    let count = g.findings.count
    let noun = g.verdict == .closeWait ? "socket" : "connection"
    let exact = g.findings.allSatisfy(\.dwellExact)
    var lines = ["\(number). \(g.severity.rawValue.uppercased()) \(g.verdict.rawValue): \(count) \(noun)\(count == 1 ? "" : "s"), "
      + "oldest \(exact ? "" : ">=")\(duration(g.oldest))"]
    let who = g.culprit.map { "\($0.comm) (pid \($0.pid))" }
    if let who {
      lines.append("   \(g.severity == .healthy ? "owner" : "culprit"): \(who)\(labelsText(g.labels))")
    } else {
      lines.append("   in network namespace \(g.netns)")
    }
    lines.append("   why: " + why(g, first: first, diagnosis: d))
    lines.append("   fix: " + fix(g, name: g.culprit?.comm ?? "the program"))
    let sites = Self.callSites(g).prefix(Self.shownCallSites)
    for (stack, n) in sites {
      lines.append("   call site: \(stack.compactText) (\(n) of \(count), seen by a running finwait trace)")
    }
    if let program = g.program, let advice = program.advice(for: g.situation) {
      lines.append("   \(program.rawValue): \(advice.text) (\(advice.reference))")
    }
    if g.findings.contains(where: \.conntrackExpiresFirst), let f = g.findings.first(where: \.conntrackExpiresFirst),
       let ct = f.conntrack {
      let n = g.findings.filter(\.conntrackExpiresFirst).count
      lines.append("   warning: \(n) NAT'd connection\(n == 1 ? " outlives its" : "s outlive their") conntrack entry (\(conntrackText(ct))): "
        + "a late FIN or RST is not translated back and is dropped; raise "
        + (ct.entry.state.flatMap(conntrackSysctl).map { "net.netfilter.nf_conntrack_tcp_timeout_\($0)" }
           ?? "the entry's conntrack timeout") + " or close sooner.")
    }
    let listed = Set(sites.map { $0.0.compactText })
    for f in g.findings.prefix(examples) { lines += findingText(f, verdict: g.verdict, now: d.now, sitesListed: listed) }
    if count > examples { lines.append("   ... \(count - examples) more") }
    return lines
  }

  /// `sitesListed`: call sites the group's header gives, not repeated here.
  func findingText(_ f: Finding, verdict: Doctor.Verdict, now: UInt64, sitesListed: Set<String> = []) -> [String] {
    let e = f.socket.endpoints
    var head = "   - \(address(e.local, e.localPort)) -> \(address(e.remote, e.remotePort))"
      + " \(f.socket.state == .closeWait ? "CLOSE_WAIT" : "FIN_WAIT2") \(f.dwellExact ? "" : ">=")\(duration(f.dwellAtLeast))"
    if f.orphaned { head += " orphaned" } else if let o = f.owner { head += " held by \(o.comm) (pid \(o.pid))" }
    if let path = f.path { head += " after \(Self.call(path, syscall: f.traced?.syscall))" }
    // Who sent the FIN, when a trace saw another process than the holder (or none holds it).
    if let c = f.traced?.closer, f.orphaned || c.pid != f.owner?.pid { head += " by \(c.comm) (pid \(c.pid))" }
    head += " netns \(f.netns)"
    var lines = [head]
    if let p = f.peer {
      var peer = "     local peer: "
      if let o = p.owner { peer += "\(o.comm) (pid \(o.pid))\(labelsText(p.labels)) " }
      peer += "in CLOSE_WAIT >=\(duration(p.closeWaitAtLeast ?? 0)), netns \(p.netns)"
      if p.viaNAT, let ct = f.conntrack { peer += ", through NAT (\(conntrackText(ct)))" }
      lines.append(peer)
    } else if f.socket.state == .finWait2 && !f.orphaned {
      lines.append("     peer: no local socket in the namespaces read"
        + (f.conntrack?.isNAT == true ? " (\(conntrackText(f.conntrack!)))" : ""))
    }
    if let stack = f.traced?.stack, !sitesListed.contains(stack.compactText) {
      lines.append("     call site: " + stack.compactText)
    }
    if let tcp = f.socket.tcp { lines.append("     tcp: " + tcpText(tcp, socket: f.socket)) }
    lines.append("     timers: " + timersText(f))
    return lines
  }

  func why(_ g: DiagnosisGroup, first f: Finding, diagnosis d: Diagnosis) -> String {
    let name = g.culprit?.comm ?? "the owner"
    let fin = d.sysctls[f.netns]?.finTimeout
    let finText = fin.map { "tcp_fin_timeout (\(duration($0)))" } ?? "tcp_fin_timeout"
    switch g.verdict {
    case .peerCloseWait:
      return "the other end is on this node and in CLOSE_WAIT: \(name) received the FIN and has not closed its socket; "
        + "this side waits for the FIN only \(name)'s close() sends, and CLOSE_WAIT has no kernel timer."
    case .attachedAfterShutdown:
      let armed = g.findings.filter(\.keepaliveArmed).count
      let keepalive = armed == 0
        ? "keepalive is off: nothing in the kernel will ever end it"
        : "keepalive (on for \(armed) of \(g.findings.count)) ends it only if the peer stops answering"
      let how = f.path.map { " (\(Self.call($0)))" } ?? ""
      return "shut down\(how) and still open in \(name): an attached FIN_WAIT2 socket has no kernel timer, \(finText) "
        + "does not apply; it stays until the peer sends FIN or RST or \(name) calls close(); \(keepalive)."
    case .closeWait:
      return "the peer (no local socket in the namespaces read) sent its FIN and \(name) has not closed the socket; "
        + "CLOSE_WAIT has no kernel timer."
    case .peerUnresponsive:
      return "keepalive probes go unanswered (\(Doctor.probesUnanswered(f.socket)) sent): the peer is gone or unreachable; "
        + (f.deadline.map { "if it stays silent, the kernel resets the connection in \(duration($0.after))." }
           ?? "the kernel will reset the connection.")
    case .orphaned:
      var text = "closed by its program (orphaned); the kernel frees it"
      if let deadline = f.deadline {
        text += " in \(deadline.atMost ? "at most " : "")\(duration(deadline.after))"
        switch deadline.cause {
        case .linger2: text += ", by TCP_LINGER2 on the socket"
        case .finTimeout:
          text += ", by \(finText) of its network namespace"
          if let fin, let nodeFin = d.node.finTimeout, f.netns != d.nodeNetns, fin != nodeFin {
            text += " (the node's is \(duration(nodeFin)))"
          }
        case .keepalive: break
        }
      }
      return text + "."
    case .halfClose:
      if f.socket.state == .closeWait {
        return "\(name) is still sending after the peer's FIN (last data sent "
          + "\(duration(UInt64(f.socket.tcp?.lastDataSentMilliseconds ?? 0) * 1_000_000)) ago): a half-close in use, not a leak."
      }
      let bytes = f.socket.tcp?.bytesReceived.map { ", \($0) bytes received" } ?? ""
      return "the peer is still sending after this side's FIN (last data "
        + "\(duration(UInt64(f.socket.tcp?.lastDataReceivedMilliseconds ?? 0) * 1_000_000)) ago\(bytes)): "
        + "a half-close in use, not a leak."
    }
  }

  func fix(_ g: DiagnosisGroup, name: String) -> String {
    switch g.verdict {
    case .peerCloseWait, .closeWait:
      return "\(name) must close() its socket when read() returns 0 (the peer's EOF), and bound idle connections "
        + "with an application timeout."
    case .attachedAfterShutdown:
      return "close() the socket after shutdown() once an application timeout passes (the orphan is then freed by "
        + "tcp_fin_timeout or TCP_LINGER2); SO_KEEPALIVE with TCP_KEEPIDLE also ends it, but only if the peer is gone."
    case .peerUnresponsive:
      return "none needed; TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT or TCP_USER_TIMEOUT on the socket shorten the wait."
    case .orphaned:
      return "none needed; net.ipv4.tcp_fin_timeout in its namespace or TCP_LINGER2 on the socket shorten the wait."
    case .halfClose:
      return "none: the connection is working."
    }
  }

  func tcpText(_ t: TCPInfo, socket s: DiagSocket) -> String {
    var parts: [String] = []
    var options: [String] = []
    if t.options.contains(.sack) { options.append("sack") }
    if t.options.contains(.timestamps) { options.append("ts") }
    if t.options.contains(.windowScaling) { options.append("wscale \(t.sendWindowScale),\(t.receiveWindowScale)") }
    if t.fastOpen { options.append("tfo") }
    if t.options.contains(.ecn) { options.append("ecn") }
    parts.append(options.isEmpty ? "no options" : options.joined(separator: " "))
    parts.append("rtt \(duration(UInt64(t.rttMicroseconds) * 1_000))")
    parts.append("retrans \(t.retransmits)/\(t.totalRetransmits)")
    if t.probes > 0 { parts.append("\(t.probes) probe\(t.probes == 1 ? "" : "s") unanswered") }
    parts.append("last data \(duration(UInt64(t.lastDataReceivedMilliseconds) * 1_000_000)) ago")
    parts.append("last ack \(duration(UInt64(t.lastAckReceivedMilliseconds) * 1_000_000)) ago")
    if let bytes = t.bytesReceived { parts.append("\(bytes) bytes in") }
    if s.receiveQueue > 0 { parts.append("\(s.receiveQueue) bytes unread") }
    return parts.joined(separator: ", ")
  }

  func timersText(_ f: Finding) -> String {
    var parts: [String] = []
    if let settings = f.settings {
      if settings.keepalive {
        var k = "keepalive on"
        var knobs: [String] = []
        if let idle = settings.keepaliveIdle { knobs.append("idle \(duration(idle))") }
        if let intvl = settings.keepaliveInterval { knobs.append("intvl \(duration(intvl))") }
        if let probes = settings.keepaliveProbes { knobs.append("cnt \(probes)") }
        if !knobs.isEmpty { k += " (" + knobs.joined(separator: " ") + ")" }
        parts.append(k)
      } else {
        parts.append("keepalive off")
      }
      switch settings.linger2 {
      case .default: parts.append("linger2 default")
      case .off: parts.append("linger2 off")
      case let .nanoseconds(ns): parts.append("linger2 \(duration(ns))")
      }
      if settings.userTimeoutMilliseconds > 0 {
        parts.append("user timeout \(duration(UInt64(settings.userTimeoutMilliseconds) * 1_000_000))")
      }
    } else if !f.orphaned || f.socket.state == .closeWait {
      parts.append(f.keepaliveArmed ? "keepalive timer armed" : "no keepalive timer")
      parts.append("socket options unread")
    }
    if let d = f.deadline {
      parts.append(d.atMost ? "ends in at most \(duration(d.after)) by \(d.cause.rawValue)"
                   : "reset in \(duration(d.after)) by keepalive if the peer stays silent")
    } else if f.verdict.severity == .leak {
      parts.append("no deadline")
    }
    return parts.joined(separator: ", ")
  }

  /// Namespaces shown in the report whose sysctls differ from the node's.
  static let shownNamespaceSysctls = 3

  func namespaceSysctlsText(_ d: Diagnosis) -> [String] {
    var shown = Set<UInt32>()
    for g in d.groups {
      for f in g.findings {
        shown.insert(f.netns)
        if let peer = f.peer { shown.insert(peer.netns) }
      }
    }
    let differing = shown.sorted().filter { $0 != d.nodeNetns && d.sysctls[$0].map { $0 != d.node } ?? false }
    var lines = differing.prefix(Self.shownNamespaceSysctls).map { "netns \($0): \(sysctlText(d.sysctls[$0]!))" }
    if differing.count > Self.shownNamespaceSysctls {
      lines.append("\(differing.count - Self.shownNamespaceSysctls) more namespaces have their own sysctls: see --json")
    }
    return lines
  }

  func sysctlText(_ s: TCPSysctls) -> String {
    var parts: [String] = []
    if let fin = s.finTimeout { parts.append("tcp_fin_timeout \(duration(fin))") }
    if let t = s.keepaliveTime, let i = s.keepaliveInterval, let p = s.keepaliveProbes {
      parts.append("keepalive \(duration(t)) then \(p) probes every \(duration(i))")
    }
    return parts.isEmpty ? "sysctls unread" : parts.joined(separator: ", ")
  }

  func labelsText(_ labels: OwnerLabels?) -> String {
    guard let labels, !labels.pod.isEmpty || !labels.container.isEmpty else { return "" }
    if labels.pod.isEmpty { return " in container \(labels.container)" }
    let ns = labels.namespace.isEmpty ? "" : labels.namespace + "/"
    return " in pod \(ns)\(labels.pod)" + (labels.container.isEmpty ? "" : " container \(labels.container)")
  }

  func conntrackText(_ m: ConntrackMatch) -> String {
    let o = m.entry.original, r = m.entry.reply
    var text = "\(address(o.local, o.localPort)) -> \(address(o.remote, o.remotePort)) is "
      + "\(address(r.local, r.localPort)) -> \(address(r.remote, r.remotePort))"
    if let state = m.entry.state { text += ", conntrack \(state.name)" }
    if let t = m.entry.timeoutSeconds { text += " for \(duration(UInt64(t) * 1_000_000_000)) more" }
    return text
  }

  /// The net.netfilter.nf_conntrack_tcp_timeout_* of an entry's state.
  func conntrackSysctl(_ s: ConntrackTCPState) -> String? {
    switch s {
    case .finWait: "fin_wait"
    case .closeWait: "close_wait"
    case .lastAck: "last_ack"
    case .timeWait: "time_wait"
    case .close: "close"
    case .established: "established"
    case .synSent, .synSent2: "syn_sent"
    case .synRecv: "syn_recv"
    case .none: nil
    }
  }

  func duration(_ ns: UInt64) -> String { formatDuration(nanoseconds: ns) }

  /// `shutdown(SHUT_WR)`, `close()`, `dup2()`, `exit` ...: the call that sent the FIN.
  static func call(_ path: Path, syscall: Syscall? = nil) -> String {
    switch path {
    case .shutdownReadWrite: "shutdown(SHUT_RDWR)"
    case .shutdownWrite: "shutdown(SHUT_WR)"
    case .close: syscall.map { $0 == .unknown ? "close" : "\($0.rawValue)()" } ?? "close"
    case .exit: "exit"
    case .other: "a kernel-internal close"
    case .unknown: "unknown"
    }
  }

  /// A group's call sites (from running tracers), most connections first.
  static func callSites(_ g: DiagnosisGroup) -> [(CallStack, Int)] {
    var counts: [String: (CallStack, Int)] = [:]
    for f in g.findings {
      guard let stack = f.traced?.stack, !stack.frames.isEmpty else { continue }
      counts[stack.compactText, default: (stack, 0)].1 += 1
    }
    return counts.values.sorted { ($0.1, $1.0.compactText) > ($1.1, $0.0.compactText) }
  }

  /// Call sites a group lists in text.
  static let shownCallSites = 3

  func address(_ a: IPAddress, _ port: UInt16) -> String {
    var line = LineBuffer(capacity: 48)
    line.append(a, port: port)
    return line.text
  }

  // MARK: JSON

  /// One object per run (one line), keys documented in docs/doctor.md.
  public func json(_ d: Diagnosis) -> String {
    var text = ""
    json(d) { text += $0.text }
    return text
  }

  /// The same object in pieces of about 64 KiB, each handed to `emit` (then
  /// reused): a report of 10,000s of connections is never one buffer.
  public func json(_ d: Diagnosis, emit: (borrowing LineBuffer) -> Void) {
    var seconds = SecondText(.utcDateTime)
    var o = LineBuffer(capacity: Self.chunk + 4096)
    o.append(ascii: "{")
    o.json("type", string: "doctor")
    o.json("time") { $0.append(rfc3339OfMonotonic: d.now, clock: clock, cache: &seconds) }
    o.json("fin_wait2", number: UInt64(d.finWait2))
    o.json("close_wait", number: UInt64(d.closeWait))
    o.json("namespaces", number: UInt64(d.namespaces))
    o.json("node_netns", number: UInt64(d.nodeNetns))
    o.jsonKey("sysctls")
    o.append(ascii: "{")
    for netns in d.sysctls.keys.sorted() {
      o.jsonKey(String(netns))
      writeSysctls(d.sysctls[netns]!, to: &o)
    }
    o.append(ascii: "}")
    o.jsonKey("groups")
    o.append(ascii: "[")
    for (i, g) in d.groups.enumerated() {
      if i > 0 { o.append(ascii: ",") }
      writeGroup(g, diagnosis: d, to: &o, emit: emit)
    }
    o.append("]}")
    emit(o)
  }

  static let chunk = 65_536

  func writeSysctls(_ s: TCPSysctls, to o: inout LineBuffer) {
    o.append(ascii: "{")
    optional("tcp_fin_timeout_ns", s.finTimeout, to: &o)
    optional("tcp_keepalive_time_ns", s.keepaliveTime, to: &o)
    optional("tcp_keepalive_intvl_ns", s.keepaliveInterval, to: &o)
    optional("tcp_keepalive_probes", s.keepaliveProbes.map(UInt64.init), to: &o)
    o.append(ascii: "}")
  }

  /// `emit` takes what is written so far between connections (each followed
  /// by an explicit "," or "]", so no key depends on the byte before it).
  func writeGroup(_ g: DiagnosisGroup, diagnosis d: Diagnosis, to o: inout LineBuffer,
                  emit: (borrowing LineBuffer) -> Void) {
    o.append(ascii: "{")
    o.json("verdict", string: g.verdict.rawValue)
    o.json("severity", string: g.severity.rawValue)
    o.json("count", number: UInt64(g.findings.count))
    o.json("oldest_ns", number: g.oldest)
    o.jsonKey("culprit")
    if let c = g.culprit { writeOwner(c, labels: g.labels, to: &o) } else { o.append("null") }
    o.json("why", string: why(g, first: g.findings[0], diagnosis: d))
    o.json("fix", string: fix(g, name: g.culprit?.comm ?? "the program"))
    o.jsonKey("program")
    if let program = g.program {
      o.append(ascii: "{")
      o.json("name", string: program.rawValue)
      if let advice = program.advice(for: g.situation) {
        o.json("advice", string: advice.text)
        o.json("reference", string: advice.reference)
      }
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.jsonKey("connections")
    o.append(ascii: "[")
    for (i, f) in g.findings.enumerated() {
      if i > 0 { o.append(ascii: ",") }
      writeFinding(f, to: &o)
      if o.count >= Self.chunk {
        emit(o)
        o.clear()
      }
    }
    o.append("]}")
  }

  func writeOwner(_ owner: Owner, labels: OwnerLabels?, to o: inout LineBuffer) {
    o.append(ascii: "{")
    o.json("pid", number: UInt64(owner.pid))
    o.json("comm", string: owner.comm)
    if let labels {
      if !labels.namespace.isEmpty { o.json("namespace", string: labels.namespace) }
      if !labels.pod.isEmpty { o.json("pod", string: labels.pod) }
      if !labels.container.isEmpty { o.json("container", string: labels.container) }
    }
    o.append(ascii: "}")
  }

  func writeFinding(_ f: Finding, to o: inout LineBuffer) {
    let e = f.socket.endpoints
    o.append(ascii: "{")
    o.json("state", string: f.socket.state == .closeWait ? "CLOSE_WAIT" : "FIN_WAIT2")
    o.json("family", string: e.local.family.rawValue)
    o.json("saddr") { $0.append(e.local) }
    o.json("sport", number: UInt64(e.localPort))
    o.json("daddr") { $0.append(e.remote) }
    o.json("dport", number: UInt64(e.remotePort))
    o.json("netns", number: UInt64(f.netns))
    o.json("orphaned", bool: f.orphaned)
    o.json("timewait", bool: f.socket.isTimewait)
    o.json("dwell_ns", number: f.dwellAtLeast)
    o.json("dwell_lower_bound", bool: !f.dwellExact)
    o.jsonKey("owner")
    if let owner = f.owner { writeOwner(owner, labels: f.labels, to: &o) } else { o.append("null") }
    o.jsonKey("peer")
    if let p = f.peer {
      o.append(ascii: "{")
      o.json("netns", number: UInt64(p.netns))
      o.json("saddr") { $0.append(p.socket.endpoints.local) }
      o.json("sport", number: UInt64(p.socket.endpoints.localPort))
      o.json("daddr") { $0.append(p.socket.endpoints.remote) }
      o.json("dport", number: UInt64(p.socket.endpoints.remotePort))
      o.json("state", string: "CLOSE_WAIT")
      optional("close_wait_ns", p.closeWaitAtLeast, to: &o)
      o.json("via_nat", bool: p.viaNAT)
      o.jsonKey("owner")
      if let owner = p.owner { writeOwner(owner, labels: p.labels, to: &o) } else { o.append("null") }
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.jsonKey("deadline")
    if let d = f.deadline {
      o.append(ascii: "{")
      o.json("after_ns", number: d.after)
      o.json("cause", string: d.cause.rawValue)
      o.json("at_most", bool: d.atMost)
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.json("keepalive_armed", bool: f.keepaliveArmed)
    if let path = f.path { o.json("path", string: path.rawValue) } else { o.jsonNull("path") }
    o.jsonKey("trace")
    if let t = f.traced {
      o.append(ascii: "{")
      o.json("path", string: t.path.rawValue)
      o.json("syscall", string: t.syscall.rawValue)
      o.jsonKey("closer")
      if let closer = t.closer { writeOwner(closer, labels: nil, to: &o) } else { o.append("null") }
      o.jsonKey("stack")
      if let stack = t.stack { o.append(stack.json) } else { o.append("null") }
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.jsonKey("tcp")
    if let t = f.socket.tcp {
      o.append(ascii: "{")
      o.json("sack", bool: t.options.contains(.sack))
      o.json("timestamps", bool: t.options.contains(.timestamps))
      o.jsonKey("wscale")
      if t.options.contains(.windowScaling) {
        o.append(ascii: "[")
        o.append(decimal: UInt64(t.sendWindowScale))
        o.append(ascii: ",")
        o.append(decimal: UInt64(t.receiveWindowScale))
        o.append(ascii: "]")
      } else {
        o.append("null")
      }
      o.json("tfo", bool: t.fastOpen)
      o.json("ecn", bool: t.options.contains(.ecn))
      o.json("retransmits", number: UInt64(t.retransmits))
      o.json("total_retransmits", number: UInt64(t.totalRetransmits))
      o.json("probes", number: UInt64(t.probes))
      o.json("rtt_us", number: UInt64(t.rttMicroseconds))
      o.json("last_data_recv_ms", number: UInt64(t.lastDataReceivedMilliseconds))
      o.json("last_ack_recv_ms", number: UInt64(t.lastAckReceivedMilliseconds))
      o.json("last_data_sent_ms", number: UInt64(t.lastDataSentMilliseconds))
      optional("bytes_received", t.bytesReceived, to: &o)
      o.json("unread_bytes", number: UInt64(f.socket.receiveQueue))
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.jsonKey("settings")
    if let s = f.settings {
      o.append(ascii: "{")
      o.json("keepalive", bool: s.keepalive)
      optional("keepalive_idle_ns", s.keepaliveIdle, to: &o)
      optional("keepalive_intvl_ns", s.keepaliveInterval, to: &o)
      optional("keepalive_probes", s.keepaliveProbes.map(UInt64.init), to: &o)
      switch s.linger2 {
      case .default: o.json("linger2", string: "default")
      case .off: o.json("linger2", string: "off")
      case let .nanoseconds(ns): o.json("linger2_ns", number: ns)
      }
      o.json("user_timeout_ms", number: UInt64(s.userTimeoutMilliseconds))
      o.json("probes_out", number: UInt64(s.probesOut))
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.jsonKey("conntrack")
    if let m = f.conntrack {
      o.append(ascii: "{")
      o.json("netns", number: UInt64(m.netns))
      o.json("nat", bool: m.isNAT)
      o.json("orig_saddr") { $0.append(m.entry.original.local) }
      o.json("orig_sport", number: UInt64(m.entry.original.localPort))
      o.json("orig_daddr") { $0.append(m.entry.original.remote) }
      o.json("orig_dport", number: UInt64(m.entry.original.remotePort))
      o.json("reply_saddr") { $0.append(m.entry.reply.local) }
      o.json("reply_sport", number: UInt64(m.entry.reply.localPort))
      o.json("reply_daddr") { $0.append(m.entry.reply.remote) }
      o.json("reply_dport", number: UInt64(m.entry.reply.remotePort))
      if let state = m.entry.state { o.json("state", string: state.name) }
      optional("timeout_s", m.entry.timeoutSeconds.map(UInt64.init), to: &o)
      o.json("expires_first", bool: f.conntrackExpiresFirst)
      o.append(ascii: "}")
    } else {
      o.append("null")
    }
    o.append(ascii: "}")
  }

  func optional(_ key: StaticString, _ value: UInt64?, to o: inout LineBuffer) {
    if let value { o.json(key, number: value) } else { o.jsonNull(key) }
  }
}

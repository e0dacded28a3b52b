import FinwaitCore
import FinwaitTestSupport
import Foundation
import XCTest

/// `finwait doctor` on real sockets, one test per verdict. Each test joins two
/// network namespaces of its own with a veth pair, sets up one connection in
/// them with fwdoctor (client in one, server in the other) and runs the real
/// binary once (or until the kernel state it waits for shows), filtered to
/// that connection by --netns, --port or --pid. Every namespace is read:
/// a remote peer is made by silencing the server (`silenceServer`).
final class DoctorTests: XCTestCase {
  /// The kernel's times and timers count jiffies (4 ms at this project's
  /// HZ 250, 10 ms at the lowest, 100) and sock_diag truncates them to ms.
  let tick = 0.011

  override func setUpWithError() throws {
    try Live.requireLive()
    try DoctorScenario.requireDriver()
  }

  // MARK: Verdicts

  func testAttachedAfterShutdownWithASilentRemotePeer() throws {
    let port = Live.port(90)
    let pair = try keep(VethPair("att"))
    let t0 = monotonicSeconds()
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair))
    let ready = try driver.ready()
    let t1 = monotonicSeconds()
    try pair.silenceServer(pid: ready.serverPid)
    // Every namespace is read, the server's too: its socket is no longer in CLOSE_WAIT.
    let (report, t2, t3) = try timed { try doctorJSON(["--netns", String(pair.client.inode), "--port", String(port)]) }
    XCTAssertGreaterThanOrEqual(report["fin_wait2"] as? Int ?? 0, 1)
    XCTAssertGreaterThanOrEqual(report["namespaces"] as? Int ?? 0, 3, "the node's, the client's and the server's")
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "attached_after_shutdown")
    XCTAssertEqual(g["severity"] as? String, "leak")
    XCTAssertEqual(g["count"] as? Int, 1)
    assertOwner(g["culprit"], pid: ready.clientPid, comm: ready.clientComm)
    XCTAssertTrue(g["program"] is NSNull, "fwdclient is no known program: \(g)")
    let c = try onlyConnection(g)
    assertEndpoints(c, saddr: VethPair.clientAddress, sport: ready.clientPort, daddr: VethPair.serverAddress,
                    dport: port)
    XCTAssertEqual(c["state"] as? String, "FIN_WAIT2")
    XCTAssertEqual(c["netns"] as? Int, pair.client.inode)
    XCTAssertEqual(c["orphaned"] as? Bool, false)
    XCTAssertEqual(c["timewait"] as? Bool, false)
    assertOwner(c["owner"], pid: ready.clientPid, comm: ready.clientComm)
    XCTAssertEqual(c["path"] as? String, "shutdown_wr", "from the socket's sk_shutdown: \(c)")
    XCTAssertTrue(c["peer"] is NSNull, "the server's socket left CLOSE_WAIT: \(c)")
    XCTAssertTrue(c["deadline"] is NSNull, "no kernel timer ends an attached FIN_WAIT2 socket: \(c)")
    XCTAssertEqual(c["keepalive_armed"] as? Bool, false)
    XCTAssertTrue(c["conntrack"] is NSNull, "no netfilter rule in these namespaces: \(c)")
    // Since the FIN's ACK (before ready), measured by the kernel in ms.
    assertNanoseconds(c["dwell_ns"], within: (t2 - t1 - tick)...(t3 - t0 + tick), "dwell_ns")
    let tcp = try XCTUnwrap(c["tcp"] as? [String: Any], "\(c)")
    // Linux's defaults, negotiated on both ends of the veth.
    XCTAssertEqual(tcp["sack"] as? Bool, true)
    XCTAssertEqual(tcp["timestamps"] as? Bool, true)
    XCTAssertEqual((tcp["wscale"] as? [Int])?.count, 2, "\(tcp)")
    XCTAssertEqual(tcp["tfo"] as? Bool, false)
    XCTAssertEqual(tcp["retransmits"] as? Int, 0)
    XCTAssertEqual(tcp["total_retransmits"] as? Int, 0)
    XCTAssertEqual(tcp["probes"] as? Int, 0)
    XCTAssertEqual(tcp["bytes_received"] as? Int, 0, "the server sent nothing, not even its FIN")
    XCTAssertEqual(tcp["unread_bytes"] as? Int, 0)
    XCTAssertGreaterThan(tcp["rtt_us"] as? Int ?? 0, 0)
    assertSettings(c, keepalive: false, linger2: nil)
  }

  func testHalfCloseWithThePeerStillSending() throws {
    let port = Live.port(92)
    let pair = try keep(VethPair("half"))
    let driver = try keep(DoctorScenario("halfclose", port: port, pair: pair))
    let ready = try driver.ready()
    let report = try doctorJSON(["--netns", String(pair.client.inode), "--port", String(port)])
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "half_close")
    XCTAssertEqual(g["severity"] as? String, "healthy")
    assertOwner(g["culprit"], pid: ready.clientPid, comm: ready.clientComm)
    let c = try onlyConnection(g)
    XCTAssertEqual(c["orphaned"] as? Bool, false)
    assertOwner(c["owner"], pid: ready.clientPid, comm: ready.clientComm)
    XCTAssertTrue(c["deadline"] is NSNull, "\(c)")
    let tcp = try XCTUnwrap(c["tcp"] as? [String: Any], "\(c)")
    // 64 bytes every 50 ms since before ready; 1 s is 20 sends of slack.
    XCTAssertGreaterThanOrEqual(tcp["bytes_received"] as? Int ?? 0, 64, "\(tcp)")
    XCTAssertLessThan(tcp["last_data_recv_ms"] as? Int ?? .max, 1_000, "\(tcp)")
    XCTAssertTrue((g["why"] as? String ?? "").contains("not a leak"), "\(g)")
    assertSettings(c, keepalive: false, linger2: nil)
  }

  /// TCP context as negotiated: a connection whose first data rode its SYN
  /// shows TFO (tcpi_options' SYN_DATA: the server acknowledged it).
  func testFastOpenAsNegotiatedIsShown() throws {
    let port = Live.port(102)
    let pair = try keep(VethPair("tfo"))
    // Without a cookie round: the client may send SYN data (0x4) and the server take it (0x200).
    try command(["ip", "netns", "exec", pair.client.name, "sysctl", "-qw", "net.ipv4.tcp_fastopen=5"])
    try command(["ip", "netns", "exec", pair.server.name, "sysctl", "-qw", "net.ipv4.tcp_fastopen=514"])
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair, fastOpen: true))
    let ready = try driver.ready()
    let args = ["--netns", String(pair.client.inode), "--port", String(port)]
    let c = try onlyConnection(try onlyGroup(try doctorJSON(args)))
    assertOwner(c["owner"], pid: ready.clientPid, comm: ready.clientComm)
    let tcp = try XCTUnwrap(c["tcp"] as? [String: Any], "\(c)")
    XCTAssertEqual(tcp["tfo"] as? Bool, true, "\(tcp)")
    XCTAssertEqual(tcp["sack"] as? Bool, true)
    let text = try doctor(args).stdout
    XCTAssertTrue(text.split(separator: "\n").contains { $0.hasPrefix("     tcp: sack ts wscale ") && $0.contains(" tfo,") }, text)
  }

  func testOrphanWithTCPLinger2AboveAMinuteEndsWhenLinger2Says() throws {
    let port = Live.port(93)
    let pair = try keep(VethPair("lng"))
    let t0 = monotonicSeconds()
    let driver = try keep(DoctorScenario("orphan", port: port, pair: pair, linger2: 90))
    let ready = try driver.ready()
    let args = ["--netns", String(pair.client.inode), "--port", String(port)]
    // The orphan reaches FIN_WAIT2 when the FIN's ACK arrives, just after
    // ready; its peer is the server, in CLOSE_WAIT until silenced.
    _ = try pollDoctor(args, within: 10) { groups($0).first?["verdict"] as? String == "peer_close_wait" }
    try pair.silenceServer(pid: ready.serverPid)
    let (report, _, t3) = try timed { try doctorJSON(args) }
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "orphaned")
    XCTAssertEqual(g["severity"] as? String, "bounded")
    XCTAssertTrue(g["culprit"] is NSNull, "no process holds an orphan: \(g)")
    let c = try onlyConnection(g)
    XCTAssertEqual(c["orphaned"] as? Bool, true)
    // Above 60 s the orphan stays a full socket with a keepalive timer (tcp_rcv_state_process).
    XCTAssertEqual(c["timewait"] as? Bool, false)
    XCTAssertTrue(c["owner"] is NSNull, "\(c)")
    XCTAssertTrue(c["path"] is NSNull, "only attached sockets have a path: \(c)")
    let deadline = try XCTUnwrap(c["deadline"] as? [String: Any], "\(c)")
    XCTAssertEqual(deadline["cause"] as? String, "linger2")
    XCTAssertEqual(deadline["at_most"] as? Bool, true, "the peer's FIN may end it sooner")
    // 90 - 60 s on the keepalive timer armed at the FIN's ACK, then 90 - 60 s in timewait.
    assertNanoseconds(deadline["after_ns"], within: (60 - (t3 - t0) - tick)...(60 + tick), "deadline.after_ns")
    assertSettings(c, keepalive: false, linger2: 90)
  }

  func testOrphanInANamespaceWithItsOwnFinTimeout() throws {
    let port = Live.port(94)
    let finTimeout = 20
    let pair = try keep(VethPair("fto", clientFinTimeoutSeconds: finTimeout))
    let t0 = monotonicSeconds()
    let driver = try keep(DoctorScenario("orphan", port: port, pair: pair))
    let ready = try driver.ready()
    let args = ["--netns", String(pair.client.inode), "--port", String(port)]
    _ = try pollDoctor(args, within: 10) { groups($0).first?["verdict"] as? String == "peer_close_wait" }
    try pair.silenceServer(pid: ready.serverPid)
    let (report, _, t3) = try timed { try doctorJSON(args) }
    let sysctls = try XCTUnwrap(report["sysctls"] as? [String: [String: Any]], "\(report)")
    let nodeNetns = try XCTUnwrap(report["node_netns"] as? Int)
    XCTAssertEqual(sysctls[String(pair.client.inode)]?["tcp_fin_timeout_ns"] as? Int, finTimeout * 1_000_000_000)
    let nodeFin = try XCTUnwrap(sysctls[String(nodeNetns)]?["tcp_fin_timeout_ns"] as? Int, "\(sysctls)")
    XCTAssertNotEqual(nodeFin, finTimeout * 1_000_000_000, "the node's fin timeout must differ for this test")
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "orphaned")
    XCTAssertTrue(g["culprit"] is NSNull, "\(g)")
    let c = try onlyConnection(g)
    XCTAssertEqual(c["orphaned"] as? Bool, true)
    // At or below 60 s the orphan is handed to a timewait socket at the FIN's ACK.
    XCTAssertEqual(c["timewait"] as? Bool, true)
    let deadline = try XCTUnwrap(c["deadline"] as? [String: Any], "\(c)")
    XCTAssertEqual(deadline["cause"] as? String, "fin_timeout")
    XCTAssertEqual(deadline["at_most"] as? Bool, true, "the peer's FIN may end it sooner")
    let fin = Double(finTimeout)
    assertNanoseconds(deadline["after_ns"], within: (fin - (t3 - t0) - tick)...(fin + tick), "deadline.after_ns")
    assertNanoseconds(c["dwell_ns"], within: 0...(t3 - t0 + tick), "dwell_ns")
    XCTAssertTrue(c["settings"] is NSNull, "a timewait socket keeps no socket options: \(c)")

    let text = try doctor(args).stdout.split(separator: "\n").map(String.init)
    XCTAssertTrue(text.contains { $0.hasPrefix("1. BOUNDED orphaned: 1 connection, oldest >=") }, "\(text)")
    XCTAssertTrue(text.contains("   in network namespace \(pair.client.inode)"), "\(text)")
    let why = "by tcp_fin_timeout (\(formatDuration(nanoseconds: UInt64(finTimeout) * 1_000_000_000))) of its network "
      + "namespace (the node's is \(formatDuration(nanoseconds: UInt64(nodeFin))))."
    XCTAssertTrue(text.contains { $0.hasPrefix("   why: closed by its program (orphaned)") && $0.hasSuffix(why) },
                  "no line ends with \(why): \(text)")
  }

  func testUnansweredKeepaliveProbesWhenTheRemotePeerIsGone() throws {
    let port = Live.port(95)
    let pair = try keep(VethPair("ka"))
    let driver = try keep(DoctorScenario("keepalive", port: port, pair: pair))
    let ready = try driver.ready()
    let args = ["--netns", String(pair.client.inode), "--port", String(port)]
    // While the server holds its end in CLOSE_WAIT, it is the culprit (it answers the probes).
    let before = try onlyGroup(try doctorJSON(args))
    XCTAssertEqual(before["verdict"] as? String, "peer_close_wait")
    XCTAssertEqual(try onlyConnection(before)["keepalive_armed"] as? Bool, true)

    try pair.silenceServer(pid: ready.serverPid)
    // The next probe (at most 1 s later) goes unanswered, and a second one a
    // second later: the verdict needs two (one may be in flight to a live peer),
    // counted in sock_diag's dump, the same reading as the deadline.
    func dumpedProbes(_ report: [String: Any]) -> Int {
      let connection = (groups(report).first?["connections"] as? [[String: Any]])?.first
      return (connection?["tcp"] as? [String: Any])?["probes"] as? Int ?? 0
    }
    let report = try pollDoctor(args, within: 15) {
      groups($0).first?["verdict"] as? String == "peer_unresponsive"
    }
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "peer_unresponsive")
    XCTAssertEqual(g["severity"] as? String, "bounded")
    assertOwner(g["culprit"], pid: ready.clientPid, comm: ready.clientComm)
    let c = try onlyConnection(g)
    XCTAssertEqual(c["orphaned"] as? Bool, false)
    XCTAssertEqual(c["keepalive_armed"] as? Bool, true)
    let probes = dumpedProbes(report)
    XCTAssertGreaterThanOrEqual(probes, 2, "\(c)")
    XCTAssertLessThan(probes, 30, "\(c)")
    XCTAssertGreaterThanOrEqual((c["settings"] as? [String: Any])?["probes_out"] as? Int ?? 0, 1, "\(c)")
    let deadline = try XCTUnwrap(c["deadline"] as? [String: Any], "\(c)")
    XCTAssertEqual(deadline["cause"] as? String, "keepalive")
    XCTAssertEqual(deadline["at_most"] as? Bool, false, "then only if the peer stays silent")
    // The timer fires within 1 s, then once a second until 30 probes are out
    // (tcp_keepalive_timer): (30 - probes) s after that firing.
    assertNanoseconds(deadline["after_ns"], within: Double(30 - probes)...Double(31 - probes), "deadline.after_ns")
    assertSettings(c, keepalive: true, linger2: nil)
  }

  func testLocalPeerInCloseWaitInAnotherNamespaceIsTheCulprit() throws {
    let port = Live.port(96)
    let pair = try keep(VethPair("pcw"))
    let t0 = monotonicSeconds()
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair))
    let ready = try driver.ready()
    let t1 = monotonicSeconds()
    // Every namespace: the server's is read too.
    let (report, t2, t3) = try timed { try doctorJSON(["--port", String(port)]) }
    XCTAssertGreaterThanOrEqual(report["namespaces"] as? Int ?? 0, 3, "the node's, the client's and the server's")
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "peer_close_wait")
    XCTAssertEqual(g["severity"] as? String, "leak")
    assertOwner(g["culprit"], pid: ready.serverPid, comm: ready.serverComm)
    let c = try onlyConnection(g)
    XCTAssertEqual(c["state"] as? String, "FIN_WAIT2")
    XCTAssertEqual(c["netns"] as? Int, pair.client.inode)
    assertOwner(c["owner"], pid: ready.clientPid, comm: ready.clientComm)
    XCTAssertTrue(c["deadline"] is NSNull, "\(c)")
    let peer = try XCTUnwrap(c["peer"] as? [String: Any], "\(c)")
    XCTAssertEqual(peer["netns"] as? Int, pair.server.inode)
    XCTAssertEqual(peer["state"] as? String, "CLOSE_WAIT")
    assertEndpoints(peer, saddr: VethPair.serverAddress, sport: port, daddr: VethPair.clientAddress,
                    dport: ready.clientPort)
    XCTAssertEqual(peer["via_nat"] as? Bool, false)
    assertOwner(peer["owner"], pid: ready.serverPid, comm: ready.serverComm)
    // Since the client's FIN reached the server (before ready).
    assertNanoseconds(peer["close_wait_ns"], within: (t2 - t1 - tick)...(t3 - t0 + tick), "peer.close_wait_ns")
  }

  func testPeerBehindAKubeProxyShapedDNATIsFoundThroughConntrack() throws {
    let port = Live.port(97)
    let pair = try keep(VethPair("nat"))
    // kube-proxy's nat OUTPUT rule for a client in the node's namespace: the
    // service address is rewritten to the backend before the packet leaves.
    let service = "10.96.0.10"
    try command(["ip", "-n", pair.client.name, "route", "add", "10.96.0.0/12", "dev", VethPair.clientLink])
    try command(["ip", "netns", "exec", pair.client.name, "nft", """
      table ip fwtest_nat {
        chain output {
          type nat hook output priority -100; policy accept;
          ip daddr \(service) tcp dport 80 dnat to \(VethPair.serverAddress):\(port)
        }
      }
      """])
    let t0 = monotonicSeconds()
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair, connect: (service, 80)))
    let ready = try driver.ready()
    // The client's socket names the service (port 80), not the test's port: filter by its pid.
    let (report, _, t3) = try timed { try doctorJSON(["--pid", String(ready.clientPid)]) }
    let g = try onlyGroup(report)
    let c = try onlyConnection(g)
    assertEndpoints(c, saddr: VethPair.clientAddress, sport: ready.clientPort, daddr: service, dport: 80)
    let peer = try XCTUnwrap(c["peer"] as? [String: Any], "the backend was not matched through conntrack: \(g)")
    XCTAssertEqual(peer["via_nat"] as? Bool, true)
    XCTAssertEqual(peer["netns"] as? Int, pair.server.inode)
    assertEndpoints(peer, saddr: VethPair.serverAddress, sport: port, daddr: VethPair.clientAddress,
                    dport: ready.clientPort)
    assertOwner(peer["owner"], pid: ready.serverPid, comm: ready.serverComm)
    XCTAssertEqual(g["verdict"] as? String, "peer_close_wait")
    assertOwner(g["culprit"], pid: ready.serverPid, comm: ready.serverComm)
    let ct = try XCTUnwrap(c["conntrack"] as? [String: Any], "\(c)")
    XCTAssertEqual(ct["nat"] as? Bool, true)
    XCTAssertEqual(ct["netns"] as? Int, pair.client.inode)
    XCTAssertEqual(ct["orig_daddr"] as? String, service)
    XCTAssertEqual(ct["orig_dport"] as? Int, 80)
    XCTAssertEqual(ct["reply_saddr"] as? String, VethPair.serverAddress)
    XCTAssertEqual(ct["reply_sport"] as? Int, port)
    XCTAssertEqual(ct["reply_daddr"] as? String, VethPair.clientAddress)
    XCTAssertEqual(ct["reply_dport"] as? Int, ready.clientPort)
    // Our FIN and its ACK seen: conntrack's CLOSE_WAIT, whose timeout (60 s
    // in a new namespace) restarted then. Nothing else ends this socket, so
    // the entry goes first: the FIN the backend may still send would be dropped.
    XCTAssertEqual(ct["state"] as? String, "CLOSE_WAIT")
    let timeout = try XCTUnwrap(ct["timeout_s"] as? Int, "\(ct)")
    XCTAssertTrue((60 - Int((t3 - t0).rounded(.up)) - 1)...60 ~= timeout, "timeout_s \(timeout) after \(t3 - t0) s")
    XCTAssertEqual(ct["expires_first"] as? Bool, true)
  }

  /// The kube-proxy case of a pod calling a Service: the client and the
  /// backend are pods (namespaces routed through the node's), and the node's
  /// PREROUTING DNAT rewrites the service address, so the NAT'd entry is in
  /// the node's conntrack only. The doctor asks the client's namespace, then
  /// the node's, and finds the backend there.
  func testServiceDNATInTheNodesNamespaceFindsTheBackendPod() throws {
    let port = Live.port(101)
    let node = try keep(PodsOnANode("svc"))
    // An address no real network uses (RFC 2544), so no route of the host's interferes.
    let service = "198.18.0.11"
    try node.serviceDNAT(service, port: 80, to: PodsOnANode.serverAddress, port: port)
    let driver = try keep(DoctorScenario("shutdown", port: port, client: node.client.name, server: node.server.name,
                                         serverAddress: PodsOnANode.serverAddress, connect: (service, 80)))
    let ready = try driver.ready()
    let report = try doctorJSON(["--pid", String(ready.clientPid)])
    let nodeNetns = try XCTUnwrap(report["node_netns"] as? Int)
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "peer_close_wait", "\(g)")
    assertOwner(g["culprit"], pid: ready.serverPid, comm: ready.serverComm)
    let c = try onlyConnection(g)
    assertEndpoints(c, saddr: PodsOnANode.clientAddress, sport: ready.clientPort, daddr: service, dport: 80)
    XCTAssertEqual(c["netns"] as? Int, node.client.inode)
    let peer = try XCTUnwrap(c["peer"] as? [String: Any], "the backend pod was not matched: \(c)")
    XCTAssertEqual(peer["via_nat"] as? Bool, true)
    XCTAssertEqual(peer["netns"] as? Int, node.server.inode)
    assertEndpoints(peer, saddr: PodsOnANode.serverAddress, sport: port, daddr: PodsOnANode.clientAddress,
                    dport: ready.clientPort)
    let ct = try XCTUnwrap(c["conntrack"] as? [String: Any], "\(c)")
    XCTAssertEqual(ct["netns"] as? Int, nodeNetns, "the entry is the node's")
    XCTAssertEqual(ct["nat"] as? Bool, true)
    XCTAssertEqual(ct["orig_daddr"] as? String, service)
    XCTAssertEqual(ct["reply_saddr"] as? String, PodsOnANode.serverAddress)
    XCTAssertEqual(ct["reply_sport"] as? Int, port)
  }

  // MARK: A running trace

  /// With `finwait trace --stack` running on the node, the doctor reads its
  /// maps: each connection's path, syscall and closer, the call site that
  /// sent the FIN, and a dwell that is exact, not a lower bound. fwstack
  /// sends the FIN from main -> serve_request -> finish_response -> shutdown().
  /// (An orphan leaves the tracer's map when it is handed to timewait, at
  /// once with a fin timeout of 60 s or less: the unit tests cover orphans.)
  func testCallSiteAndExactDwellFromARunningTrace() throws {
    try Live.requireLive(stackDriver: true)
    let trace = try FinwaitProcess(["--json", "--stack"])
    defer { _ = try? trace.stop() }
    let (port, caller, call) = (Live.port(99), "finish_response", "shutdown")
    let t0 = monotonicSeconds()
    let driver = try SpawnedProcess([Live.stackDriver ?? "fwstack", "shutdown_wr", String(port), "20000"])
    defer { if driver.process.isRunning { kill(driver.process.processIdentifier, SIGKILL) } }
    guard waitUntil(10, { driver.stdout.text.contains("\n") }),
      let truth = try JSONSerialization.jsonObject(with: Data((driver.stdout.lines.first ?? "").utf8)) as? [String: Any],
      let pid = truth["owner_pid"] as? Int, let clientPort = truth["client_port"] as? Int
    else { throw LiveError("fwstack printed no truth: \(driver.stdout.text) \(driver.stderr.text)") }
    func connection(_ report: [String: Any]) -> [String: Any]? {
      groups(report).flatMap { $0["connections"] as? [[String: Any]] ?? [] }.first { $0["sport"] as? Int == clientPort }
    }
    // FIN_WAIT2 once the FIN's ACK is in: the next run that lists it.
    let (report, t2, t3) = try timed {
      // Bounded for QEMU, where one doctor run takes seconds.
      try pollDoctor(["--port", String(port)], within: 30) { connection($0)?["trace"] is [String: Any] }
    }
    let g = try onlyGroup(report)
    XCTAssertEqual(g["verdict"] as? String, "peer_close_wait", "fwstack holds the peer in CLOSE_WAIT: \(g)")
    let c = try XCTUnwrap(connection(report))
    XCTAssertEqual(c["orphaned"] as? Bool, false, "\(c)")
    XCTAssertEqual(c["path"] as? String, "shutdown_wr", "\(c)")
    let t = try XCTUnwrap(c["trace"] as? [String: Any], "\(c)")
    XCTAssertEqual(t["path"] as? String, "shutdown_wr")
    XCTAssertEqual(t["syscall"] as? String, call)
    assertOwner(t["closer"], pid: pid, comm: "fwstack")
    let frames = (t["stack"] as? [[String: Any]] ?? []).map { $0["symbol"] as? String ?? "?" }
    XCTAssertEqual(Array(frames.prefix(4)), [call, caller, "serve_request", "main"], "\(t)")
    // Exact: from the tracer's FIN_WAIT2 timestamp, which is when the FIN's
    // ACK arrived, as sock_diag's last-ACK age also says (whole ms, jiffies),
    // read in the same run a little before the dwell's "now".
    XCTAssertEqual(c["dwell_lower_bound"] as? Bool, false, "\(c)")
    assertNanoseconds(c["dwell_ns"], within: 0...(t3 - t0), "dwell_ns")
    if let dwell = c["dwell_ns"] as? Int, let lastAck = (c["tcp"] as? [String: Any])?["last_ack_recv_ms"] as? Int {
      let ack = Double(lastAck) / 1e3
      XCTAssertTrue((ack - tick)...(ack + 0.001 + tick + (t3 - t2)) ~= Double(dwell) / 1e9,
                    "dwell \(dwell) ns against the last ACK \(lastAck) ms ago, in a run of at most \(t3 - t2) s")
    } else {
      XCTFail("no dwell or last ACK: \(c)")
    }
    let text = try doctor(["--port", String(port)]).stdout
    XCTAssertTrue(text.split(separator: "\n").contains {
      $0.hasPrefix("   call site: libc.so.6:\(call)+") && $0.contains("<fwstack:\(caller)+") && $0.hasSuffix("(1 of 1, seen by a running finwait trace)")
    }, text)
    let holder = " held by fwstack (pid \(pid)) after shutdown(SHUT_WR)"
    XCTAssertTrue(text.contains(holder), "no '\(holder)' in \(text)")
  }

  // MARK: --watch

  /// One JSON object per interval until SIGINT, then exit 0; the connection
  /// ending between runs shows in the next one.
  func testWatchReportsEveryIntervalAndStopsOnSIGINT() throws {
    let port = Live.port(98)
    let pair = try keep(VethPair("watch"))
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair))
    _ = try driver.ready()
    let bin = try XCTUnwrap(Live.finwait)
    let watch = try SpawnedProcess(
      [bin, "doctor", "--watch", "200ms", "--json", "--netns", String(pair.client.inode), "--port", String(port)])
    defer { if watch.process.isRunning { kill(watch.process.processIdentifier, SIGKILL) } }
    func reports() -> [[String: Any]] {
      watch.stdout.text.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
      }
    }
    XCTAssertTrue(waitUntil(20) { reports().count >= 2 }, "two runs: \(watch.stdout.text) \(watch.stderr.text)")
    XCTAssertEqual(reports().prefix(2).map { groups($0).first?["verdict"] as? String },
                   ["peer_close_wait", "peer_close_wait"])
    // The client goes away, and the server with it: a later run has nothing left.
    driver.cleanUp()
    XCTAssertTrue(waitUntil(20) { reports().last.map { groups($0).isEmpty } ?? false }, watch.stdout.text)
    kill(watch.process.processIdentifier, SIGINT)
    XCTAssertTrue(waitUntil(10) { !watch.process.isRunning }, "still running 10 s after SIGINT")
    XCTAssertTrue(watch.outputEnds(), "its output did not reach EOF")
    XCTAssertEqual(watch.process.terminationStatus, 0, watch.stderr.text)
    XCTAssertEqual(watch.process.terminationReason, .exit)
    for line in watch.stdout.text.split(separator: "\n") { try validate(String(line)) }
  }

  /// Without CAP_SYS_ADMIN and CAP_NET_ADMIN, what needs them is off with one
  /// warning each, said in the first run and never again (the real sources,
  /// not a script); every run still reports; SIGTERM ends it with status 0.
  func testWatchWithoutOptionalCapabilitiesWarnsOnceAndStopsOnSIGTERM() throws {
    let bin = try XCTUnwrap(Live.finwait)
    // A namespace it cannot enter without CAP_SYS_ADMIN: named once too.
    let other = try TestNamespace("cap")
    defer { withExtendedLifetime(other) {} }
    let watch = try SpawnedProcess(["/usr/bin/setpriv", "--bounding-set=-sys_admin,-net_admin",
                                    "--inh-caps=-sys_admin,-net_admin", bin, "doctor", "--watch", "200ms", "--json"])
    defer { if watch.process.isRunning { kill(watch.process.processIdentifier, SIGKILL) } }
    func runs() -> Int { watch.stdout.text.split(separator: "\n").count }
    XCTAssertTrue(waitUntil(20) { runs() >= 3 }, "three runs: \(watch.stdout.text) \(watch.stderr.text)")
    kill(watch.process.processIdentifier, SIGTERM)
    XCTAssertTrue(waitUntil(10) { !watch.process.isRunning }, "still running 10 s after SIGTERM")
    XCTAssertTrue(watch.outputEnds(), "its output did not reach EOF")
    XCTAssertEqual(watch.process.terminationStatus, 0, watch.stderr.text)
    XCTAssertEqual(watch.process.terminationReason, .exit)
    let warnings = watch.stderr.text.split(separator: "\n").map(String.init)
    for capability in ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"] {
      XCTAssertEqual(warnings.filter { $0.hasPrefix("finwait: warning: without \(capability), finwait ") }.count, 1,
                     "\(capability) once, over \(runs()) runs: \(warnings)")
    }
    XCTAssertEqual(warnings.filter { $0.contains("could not be read") && $0.contains(String(other.inode)) }.count, 1,
                   "\(warnings)")
    XCTAssertEqual(Set(warnings).count, warnings.count, "no warning twice: \(warnings)")
    for line in watch.stdout.text.split(separator: "\n") { try validate(String(line)) }
  }

  // MARK: Text

  func testTextReportFirstLineAndGroupHeader() throws {
    let port = Live.port(91)
    let pair = try keep(VethPair("txt"))
    let driver = try keep(DoctorScenario("shutdown", port: port, pair: pair))
    let ready = try driver.ready()
    try pair.silenceServer(pid: ready.serverPid)
    let args = ["--netns", String(pair.client.inode), "--port", String(port)]
    let report = try doctorJSON(args)
    let nodeNetns = try XCTUnwrap(report["node_netns"] as? Int)
    let node = try XCTUnwrap((report["sysctls"] as? [String: [String: Any]])?[String(nodeNetns)], "\(report)")
    func ns(_ key: String) throws -> String {
      formatDuration(nanoseconds: UInt64(try XCTUnwrap(node[key] as? Int, "\(key) unread: \(node)")))
    }
    let probes = try XCTUnwrap(node["tcp_keepalive_probes"] as? Int)
    let nodeText = "tcp_fin_timeout \(try ns("tcp_fin_timeout_ns")), keepalive \(try ns("tcp_keepalive_time_ns")) "
      + "then \(probes) probes every \(try ns("tcp_keepalive_intvl_ns"))"

    let run = try doctor(args)
    // Without the lines of namespaces whose sysctls differ from a tuned host's.
    let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      .filter { !$0.hasPrefix("netns ") }
    XCTAssertGreaterThanOrEqual(lines.count, 8, run.stdout)
    guard lines.count >= 8 else { return }
    // Counts are of every namespace read, before filters.
    XCTAssertTrue(lines[0].hasPrefix("finwait doctor: "), lines[0])
    XCTAssertTrue(lines[0].hasSuffix(" network namespaces; node: \(nodeText)"), lines[0])
    XCTAssertEqual(lines[1], "1 group: 1 leak")
    XCTAssertEqual(lines[2], "")
    XCTAssertTrue(lines[3].hasPrefix("1. LEAK attached_after_shutdown: 1 connection, oldest >="), lines[3])
    XCTAssertEqual(lines[4], "   culprit: \(ready.clientComm) (pid \(ready.clientPid))")
    XCTAssertTrue(lines[5].hasPrefix("   why: shut down (shutdown(SHUT_WR)) and still open in \(ready.clientComm):"),
                  lines[5])
    XCTAssertTrue(lines[5].hasSuffix("keepalive is off: nothing in the kernel will ever end it."), lines[5])
    XCTAssertTrue(lines[6].hasPrefix("   fix: close() the socket after shutdown()"), lines[6])
    let connection = "   - \(VethPair.clientAddress):\(ready.clientPort) -> \(VethPair.serverAddress):\(port)"
      + " FIN_WAIT2 >="
    XCTAssertTrue(lines[7].hasPrefix(connection), "\(lines[7]) does not start with \(connection)")
    let holder = " held by \(ready.clientComm) (pid \(ready.clientPid)) after shutdown(SHUT_WR)"
      + " netns \(pair.client.inode)"
    XCTAssertTrue(lines[7].hasSuffix(holder), "\(lines[7]) does not end with \(holder)")
    XCTAssertTrue(lines.contains("     peer: no local socket in the namespaces read"), run.stdout)
    XCTAssertTrue(lines.contains { $0.hasPrefix("     timers: ") && $0.hasSuffix("no deadline") }, run.stdout)
  }

  // MARK: Helpers

  /// Cleans `object` (a namespace pair, a scenario) up in the test's
  /// teardown, which runs even when the test fails. Explicitly: XCTest keeps
  /// the test case, and with it this block, until the process exits, so a
  /// deinit would come too late. Scenarios stop before the namespaces they
  /// live in go (teardown blocks run last in, first out).
  func keep<T: CleanUp>(_ object: T) -> T {
    addTeardownBlock { object.cleanUp() }
    return object
  }

  func timed<T>(_ body: () throws -> T) rethrows -> (T, Double, Double) {
    let start = monotonicSeconds()
    let value = try body()
    return (value, start, monotonicSeconds())
  }

  /// Runs `finwait doctor` once (bounded to 30 s) and expects exit status 0.
  func doctor(_ arguments: [String]) throws -> (stdout: String, stderr: String) {
    let p = try SpawnedProcess([Live.finwait ?? "finwait", "doctor"] + arguments)
    guard waitUntil(30, { !p.process.isRunning }) else { throw LiveError("finwait doctor \(arguments) ran over 30 s") }
    guard p.outputEnds(within: 10) else {
      throw LiveError("finwait doctor exited but its output did not reach EOF")
    }
    guard p.process.terminationStatus == 0 else {
      throw LiveError("finwait doctor \(arguments) exited \(p.process.terminationStatus): \(p.stderr.text)")
    }
    return (p.stdout.text, p.stderr.text)
  }

  /// One run's JSON object (`--json` prints exactly one line per run),
  /// checked against docs/doctor.schema.json.
  func doctorJSON(_ arguments: [String]) throws -> [String: Any] {
    let (object, line) = try doctorLine(arguments)
    try validate(line)
    return object
  }

  func doctorLine(_ arguments: [String]) throws -> (object: [String: Any], line: String) {
    let out = try doctor(arguments + ["--json"]).stdout
    let lines = out.split(separator: "\n").map(String.init)
    guard lines.count == 1, let o = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any],
      o["type"] as? String == "doctor"
    else { throw LiveError("not one doctor JSON line: \(out)") }
    return (o, lines[0])
  }

  func validate(_ line: String) throws {
    let check = try schemaCheck([line], schema: "doctor.schema.json")
    guard check.status == 0 else { throw LiveError("doctor --json does not match its schema: \(check.report)") }
  }

  /// Runs the doctor until its report satisfies `condition`, for at most
  /// `seconds`; the report returned is checked against the schema.
  func pollDoctor(_ arguments: [String], within seconds: Double, until condition: ([String: Any]) -> Bool) throws
    -> [String: Any] {
    let deadline = monotonicSeconds() + seconds
    var last: [String: Any] = [:]
    repeat {
      let (object, line) = try doctorLine(arguments)
      if condition(object) {
        try validate(line)
        return object
      }
      last = object
      usleep(100_000)
    } while monotonicSeconds() < deadline
    throw LiveError("no such report within \(seconds) s; the last: \(last)")
  }

  func onlyGroup(_ report: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    let all = groups(report)
    XCTAssertEqual(all.count, 1, "\(report)", file: file, line: line)
    return try XCTUnwrap(all.first, "no group: \(report)", file: file, line: line)
  }

  func onlyConnection(_ group: [String: Any], file: StaticString = #filePath, line: UInt = #line) throws
    -> [String: Any] {
    let connections = group["connections"] as? [[String: Any]] ?? []
    XCTAssertEqual(connections.count, 1, "\(group)", file: file, line: line)
    return try XCTUnwrap(connections.first, "no connection: \(group)", file: file, line: line)
  }

  func assertOwner(_ value: Any?, pid: Int, comm: String, file: StaticString = #filePath, line: UInt = #line) {
    let owner = value as? [String: Any]
    XCTAssertEqual(owner?["pid"] as? Int, pid, "\(value ?? "missing")", file: file, line: line)
    XCTAssertEqual(owner?["comm"] as? String, comm, "\(value ?? "missing")", file: file, line: line)
  }

  func assertEndpoints(_ o: [String: Any], saddr: String, sport: Int, daddr: String, dport: Int,
                       file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(o["saddr"] as? String, saddr, "\(o)", file: file, line: line)
    XCTAssertEqual(o["sport"] as? Int, sport, "\(o)", file: file, line: line)
    XCTAssertEqual(o["daddr"] as? String, daddr, "\(o)", file: file, line: line)
    XCTAssertEqual(o["dport"] as? Int, dport, "\(o)", file: file, line: line)
  }

  /// A nanosecond value within a range given in seconds.
  func assertNanoseconds(_ value: Any?, within seconds: ClosedRange<Double>, _ name: String,
                         file: StaticString = #filePath, line: UInt = #line) {
    guard let ns = value as? Int else { return XCTFail("\(name) missing: \(value ?? "nil")", file: file, line: line) }
    let s = Double(ns) / 1e9
    XCTAssertTrue(seconds.contains(s), "\(name) \(s) s not within \(seconds)", file: file, line: line)
  }

  /// The socket's own settings, as fwdoctor set them (default TCP_LINGER2 when `linger2` is nil).
  func assertSettings(_ c: [String: Any], keepalive: Bool, linger2: Int?, file: StaticString = #filePath,
                      line: UInt = #line) {
    guard let s = c["settings"] as? [String: Any] else {
      return XCTFail("settings unread: \(c["settings"] ?? "missing")", file: file, line: line)
    }
    XCTAssertEqual(s["keepalive"] as? Bool, keepalive, "\(s)", file: file, line: line)
    if let linger2 {
      XCTAssertEqual(s["linger2_ns"] as? Int, linger2 * 1_000_000_000, "\(s)", file: file, line: line)
    } else {
      XCTAssertEqual(s["linger2"] as? String, "default", "\(s)", file: file, line: line)
    }
    if keepalive {
      XCTAssertEqual(s["keepalive_idle_ns"] as? Int, 1_000_000_000, "\(s)", file: file, line: line)
      XCTAssertEqual(s["keepalive_intvl_ns"] as? Int, 1_000_000_000, "\(s)", file: file, line: line)
      XCTAssertEqual(s["keepalive_probes"] as? Int, 30, "\(s)", file: file, line: line)
    }
  }
}

func groups(_ report: [String: Any]) -> [[String: Any]] { report["groups"] as? [[String: Any]] ?? [] }

/// Two network namespaces of the test's own joined by a veth pair: the
/// client's (10.231.0.1) and the server's (10.231.0.2). Interface names are
/// the same in every pair: they live only inside the namespaces, which are
/// deleted (with the veth and any nft table in them) when the pair is released.
protocol CleanUp: AnyObject {
  func cleanUp()
}

final class VethPair: CleanUp {
  static let clientAddress = "10.231.0.1"
  static let serverAddress = "10.231.0.2"
  static let clientLink = "fwc"
  static let serverLink = "fws"
  let client: TestNamespace
  let server: TestNamespace

  init(_ suffix: String, clientFinTimeoutSeconds: Int? = nil) throws {
    client = try TestNamespace(suffix + "-c", finTimeoutSeconds: clientFinTimeoutSeconds)
    server = try TestNamespace(suffix + "-s")
    try command(["ip", "-n", client.name, "link", "add", Self.clientLink, "type", "veth", "peer", "name",
                 Self.serverLink, "netns", server.name])
    try command(["ip", "-n", client.name, "addr", "add", Self.clientAddress + "/24", "dev", Self.clientLink])
    try command(["ip", "-n", server.name, "addr", "add", Self.serverAddress + "/24", "dev", Self.serverLink])
    try command(["ip", "-n", client.name, "link", "set", Self.clientLink, "up"])
    try command(["ip", "-n", server.name, "link", "set", Self.serverLink, "up"])
  }

  func cleanUp() {
    for ns in [client, server] { try? command(["ip", "netns", "del", ns.name]) }
  }

  /// The far end goes away: nothing the client sends reaches the server any more.
  func takeServerDown() throws {
    try command(["ip", "-n", server.name, "link", "set", Self.serverLink, "down"])
  }

  /// The peer becomes a silent remote one: its link goes down, then the
  /// server process (`pid`) is killed, so its socket leaves CLOSE_WAIT (its
  /// FIN is lost on the way) and no local socket is the client's peer any more.
  func silenceServer(pid: Int) throws {
    try takeServerDown()
    kill(pid_t(pid), SIGKILL)
    // A zombie has closed its files; its parent (the client) reaps it at the end.
    func gone() -> Bool {
      guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
      return stat.split(separator: ")").last?.split(separator: " ").first == "Z"
    }
    guard waitUntil(10, gone) else { throw LiveError("the server (pid \(pid)) outlived SIGKILL by 10 s") }
  }
}

/// Two pods on this node: namespaces of the test's own, each joined to the
/// node's namespace by a veth pair and routed through it (forwarding on the
/// node's two ends only), as a CNI plugin does. The node's ends and an nft
/// table in the node's namespace are removed with them.
final class PodsOnANode: CleanUp {
  static let clientAddress = "10.232.1.2"
  static let serverAddress = "10.232.2.2"
  let client: TestNamespace
  let server: TestNamespace
  let table: String
  private var tableAdded = false

  init(_ suffix: String) throws {
    client = try TestNamespace(suffix + "-c")
    server = try TestNamespace(suffix + "-s")
    table = "fwtest_\(getpid())_\(suffix)"
    let tag = "fw\(getpid() % 100_000)"
    for (ns, side, subnet) in [(client, "c", "10.232.1"), (server, "s", "10.232.2")] {
      let nodeEnd = "\(tag)\(side)"
      try command(["ip", "link", "add", nodeEnd, "type", "veth", "peer", "name", "eth0", "netns", ns.name])
      try command(["ip", "addr", "add", "\(subnet).1/24", "dev", nodeEnd])
      try command(["ip", "link", "set", nodeEnd, "up"])
      try command(["sysctl", "-qw", "net.ipv4.conf.\(nodeEnd).forwarding=1"])
      try command(["ip", "-n", ns.name, "addr", "add", "\(subnet).2/24", "dev", "eth0"])
      try command(["ip", "-n", ns.name, "link", "set", "eth0", "up"])
      try command(["ip", "-n", ns.name, "route", "add", "default", "via", "\(subnet).1"])
    }
  }

  /// kube-proxy's nat PREROUTING rule for a Service, in the node's namespace.
  func serviceDNAT(_ service: String, port: Int, to backend: String, port backendPort: Int) throws {
    try command(["nft", """
      table ip \(table) {
        chain prerouting {
          type nat hook prerouting priority -100; policy accept;
          ip daddr \(service) tcp dport \(port) dnat to \(backend):\(backendPort)
        }
      }
      """])
    tableAdded = true
  }

  func cleanUp() {
    if tableAdded { try? command(["nft", "delete", "table", "ip", table]) }
    // The node's veth ends go with the namespaces that hold their peers.
    for ns in [client, server] { try? command(["ip", "netns", "del", ns.name]) }
  }
}

/// fwdoctor (Tests/driver/fwdoctor.c): one connection set up for a verdict,
/// client in the pair's client namespace, server in its server namespace.
final class DoctorScenario: SpawnedProcess, CleanUp {
  struct Ready {
    var clientPid: Int
    var clientComm: String
    var serverPid: Int
    var serverComm: String
    var clientPort: Int
  }

  static var path: String? { Live.environment["FINWAIT_DOCTOR_DRIVER"] }

  /// As `Live.requireLive`: a loud skip, or a failure under FINWAIT_REQUIRE_LIVE=1.
  static func requireDriver(file: StaticString = #filePath, line: UInt = #line) throws {
    guard path.map({ FileManager.default.isExecutableFile(atPath: $0) }) != true else { return }
    let message = "LIVE TEST SKIPPED: needs FINWAIT_DOCTOR_DRIVER (run through `make test`)"
    FileHandle.standardError.write(Data("\n*** \(message) ***\n".utf8))
    if Live.environment["FINWAIT_REQUIRE_LIVE"] == "1" {
      XCTFail(message + " (FINWAIT_REQUIRE_LIVE=1)", file: file, line: line)
      throw XCTSkip("failed: " + message)
    }
    throw XCTSkip(message)
  }

  /// `connect`: the address and port the client dials when not the server's (a DNAT in between).
  /// `fastOpen`: the client's data rides its SYN (TCP Fast Open).
  convenience init(_ scenario: String, port: Int, pair: VethPair, connect: (String, Int)? = nil, linger2: Int? = nil,
                   fastOpen: Bool = false) throws {
    try self.init(scenario, port: port, client: pair.client.name, server: pair.server.name,
                  serverAddress: VethPair.serverAddress, connect: connect, linger2: linger2, fastOpen: fastOpen)
  }

  init(_ scenario: String, port: Int, client: String, server: String, serverAddress: String,
       connect: (String, Int)? = nil, linger2: Int? = nil, fastOpen: Bool = false) throws {
    var args = [Self.path ?? "fwdoctor", scenario, "-p", String(port), "-c", client, "-s", server,
                "-a", connect?.0 ?? serverAddress, "-b", serverAddress, "-t", "120"]
    if let connect { args += ["-d", String(connect.1)] }
    if let linger2 { args += ["-l", String(linger2)] }
    if fastOpen { args.append("-F") }
    try super.init(args)
  }

  /// Waits (at most 15 s) for the ready line: the server has the client's FIN.
  func ready() throws -> Ready {
    guard waitUntil(15, { stdout.text.contains("\n") || !process.isRunning }),
      let line = stdout.lines.first,
      let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      o["ready"] as? Bool == true,
      let clientPid = o["client_pid"] as? Int, let clientComm = o["client_comm"] as? String,
      let serverPid = o["server_pid"] as? Int, let serverComm = o["server_comm"] as? String,
      let clientPort = o["client_port"] as? Int
    else { throw LiveError("fwdoctor did not get ready: \(stdout.text) \(stderr.text)") }
    return Ready(clientPid: clientPid, clientComm: clientComm, serverPid: serverPid, serverComm: serverComm,
                 clientPort: clientPort)
  }

  /// SIGTERM, then SIGKILL if it has not exited within 5 s (its server dies with it).
  func cleanUp() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    if !waitUntil(5, { !process.isRunning }) { kill(process.processIdentifier, SIGKILL) }
  }
}

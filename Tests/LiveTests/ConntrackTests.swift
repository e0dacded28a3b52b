import FinwaitCore
import FinwaitTracing
import Foundation
import XCTest

/// ConntrackTable against the kernel's conntrack, kube-proxy shaped: in a
/// network namespace of the test's own, an nft `nat output` rule DNATs a
/// service address (port 80) to a backend on a veth address, and a client
/// connects to the service, then shuts down its side. Once the client is in
/// FIN_WAIT2 (its FIN was ACKed), conntrack has the entry in CLOSE_WAIT with
/// the close_wait timeout (60 s by default): the istio/istio#43297 case, an
/// entry that expires while the socket waits for the peer's FIN.
final class ConntrackTests: XCTestCase {
  /// nf_conntrack_tcp_timeout_close_wait set in the test's namespace only,
  /// so an entry with it came from that namespace's table.
  static let closeWaitTimeout: UInt32 = 77

  /// argv: family (4 or 6), backend address, backend port, service address.
  /// Binds the backend, connects the client to the service, shuts the
  /// client's side down, waits (at most 5 s) until the client is in FIN_WAIT2
  /// (tcpi_state 5: the backend's ACK of the FIN went through conntrack),
  /// prints the client's port, then holds the sockets until SIGTERM (at most 60 s).
  static let helper = """
    import signal, socket, sys, time
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
    family = socket.AF_INET if sys.argv[1] == "4" else socket.AF_INET6
    s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((sys.argv[2], int(sys.argv[3]))); s.listen()
    c = socket.create_connection((sys.argv[4], 80), timeout=5); a, _ = s.accept()
    c.shutdown(socket.SHUT_WR)
    deadline = time.monotonic() + 5
    while c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 5:
        assert time.monotonic() < deadline, "client never reached FIN_WAIT2"
        time.sleep(0.01)
    print(c.getsockname()[1], flush=True)
    signal.sigtimedwait([signal.SIGTERM], 60)
    """

  func testLookupFindsTheIPv4DNATEntryFromBothEnds() throws {
    try Live.requireLive()
    try checkDNAT(
      family: 4, backend: (.v4(10, 244, 0, 5), "10.244.0.5", "10.244.0.5/24"), service: (.v4(10, 96, 0, 10), "10.96.0.10"),
      serviceRoute: "10.96.0.0/12", port: Live.port(70))
  }

  func testLookupFindsTheIPv6DNATEntryFromBothEnds() throws {
    try Live.requireLive()
    try checkDNAT(
      family: 6, backend: (.v6(high: 0xfd00_0244 << 32, low: 5), "fd00:244::5", "fd00:244::5/64"),
      service: (.v6(high: 0xfd00_0096 << 32, low: 0x10), "fd00:96::10"), serviceRoute: "fd00:96::/64", port: Live.port(71))
  }

  private func checkDNAT(
    family: Int, backend: (address: IPAddress, text: String, prefix: String), service: (address: IPAddress, text: String),
    serviceRoute: String, port: Int
  ) throws {
    let ns = try TestNamespace("ct\(family)")
    let table = family == 4 ? "ip" : "ip6"
    let backendText = family == 4 ? "\(backend.text):\(port)" : "[\(backend.text)]:\(port)"
    for step in [
      ["ip", "-n", ns.name, "link", "add", "fwct0", "type", "veth", "peer", "name", "fwct1"],
      ["ip", "-n", ns.name, "addr", "add", backend.prefix, "dev", "fwct0", "nodad"],
      ["ip", "-n", ns.name, "link", "set", "fwct0", "up"],
      ["ip", "-n", ns.name, "link", "set", "fwct1", "up"],
      // The service address needs a route for connect() to get as far as the DNAT.
      ["ip", "-n", ns.name, "route", "add", serviceRoute, "dev", "fwct0"],
      ["ip", "netns", "exec", ns.name, "nft", "add", "table", table, "fwct"],
      ["ip", "netns", "exec", ns.name, "nft", "add", "chain", table, "fwct", "out", "{ type nat hook output priority -100 ; }"],
      ["ip", "netns", "exec", ns.name, "nft", "add", "rule", table, "fwct", "out",
       table, "daddr", service.text, "tcp", "dport", "80", "dnat", "to", backendText],
      ["ip", "netns", "exec", ns.name, "sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_timeout_close_wait=\(Self.closeWaitTimeout)"],
    ] {
      try command(family == 4 ? step.filter { $0 != "nodad" } : step)
    }

    let holder = try SpawnedProcess(["/usr/bin/env", "ip", "netns", "exec", ns.name, "python3", "-c", Self.helper,
                                     String(family), backend.text, String(port), service.text])
    defer {
      kill(holder.process.processIdentifier, SIGTERM)
      waitUntil(10) { !holder.process.isRunning }
    }
    XCTAssertTrue(waitUntil(15) { holder.stdout.text.hasSuffix("\n") || !holder.process.isRunning }, "no client port")
    let clientPort = try XCTUnwrap(UInt16(holder.stdout.text.trimmingCharacters(in: .whitespacesAndNewlines)),
                                   "helper said: \(holder.stdout.text) \(holder.stderr.text)")

    // Each socket's own view (getsockname -> getpeername).
    let client = Endpoints(local: backend.address, localPort: clientPort, remote: service.address, remotePort: 80)
    let server = Endpoints(local: backend.address, localPort: UInt16(port), remote: backend.address, remotePort: clientPort)
    let netns = UInt32(ns.inode)
    let namespaces = Namespaces()
    let conntrack = ConntrackTable(namespaces: namespaces)
    XCTAssertEqual(try conntrack.availability(netns: netns), .available)

    let byOriginal = try XCTUnwrap(conntrack.lookup(netns: netns, client), "no entry for the client's view")
    XCTAssertEqual(byOriginal.original, client)
    XCTAssertEqual(byOriginal.reply, server, "the reply comes from the real backend, not the service address")
    XCTAssertTrue(byOriginal.isDNAT)
    XCTAssertFalse(byOriginal.isSNAT)
    XCTAssertEqual(byOriginal.state, .closeWait)
    let timeout = try XCTUnwrap(byOriginal.timeoutSeconds)
    XCTAssertTrue((Self.closeWaitTimeout - 15...Self.closeWaitTimeout).contains(timeout), "timeout \(timeout)")
    XCTAssertNotNil(byOriginal.id)
    XCTAssertNil(byOriginal.zone)
    XCTAssertEqual(byOriginal.peerEndpoints(of: client), server)

    // The backend's socket finds the same entry through the reply tuple.
    let byReply = try XCTUnwrap(conntrack.lookup(netns: netns, server), "no entry for the server's view")
    XCTAssertEqual(byReply.id, byOriginal.id)
    XCTAssertEqual(byReply.original, client)
    XCTAssertEqual(byReply.peerEndpoints(of: server), client)

    // Reversing the client's endpoints, what finwait does without conntrack, names no entry.
    let reversed = Endpoints(local: service.address, localPort: 80, remote: backend.address, remotePort: clientPort)
    XCTAssertNil(try conntrack.lookup(netns: netns, reversed))
    // The entry lives in the test's namespace only.
    XCTAssertNil(try conntrack.lookup(netns: namespaces.own, client))
  }
}

import FinwaitCore
import FinwaitTracing
import Foundation
import XCTest

/// The iter/tcp reader against real loopback sockets whose options the test
/// set itself, in our network namespace and in one of the test's own.
final class SocketSettingsTests: XCTestCase {
  func testEachSocketsOwnSettingsAreReadExactlyPerNamespace() throws {
    try Live.requireLive()
    let namespaces = Namespaces()
    let reader = try SocketSettingsReader(namespaces: namespaces)

    let here = try HalfClosedConnections(port: UInt16(Live.port(80)))
    defer { here.close() }
    let ns = try TestNamespace("iter")
    let nsFD = open("/run/netns/\(ns.name)", O_RDONLY | O_CLOEXEC)
    XCTAssertGreaterThanOrEqual(nsFD, 0)
    defer { Glibc.close(nsFD) }
    // The same port in both: only the namespace tells the listeners apart.
    let there = try inNamespace(nsFD) { try HalfClosedConnections(port: UInt16(Live.port(80))) }
    defer { there.close() }

    for (conns, netns) in [(here, namespaces.own), (there, UInt32(ns.inode))] {
      // The peer's ACK of each FIN arrives in softirq right after shutdown():
      // wait (bounded) for all three clients to be in FIN_WAIT2.
      var read: [Endpoints: SocketSettings] = [:]
      let settled = waitUntil(5) {
        read = (try? reader.settings(netns: netns)) ?? [:]
        return conns.clients.allSatisfy { read[$0.endpoints]?.state == .finWait2 }
      }
      XCTAssertTrue(settled, "clients not all seen in FIN_WAIT2 in netns \(netns): \(read.values.map(\.state))")
      let mine = read.values.filter { conns.all.map(\.endpoints).contains($0.endpoints) }
      XCTAssertEqual(mine.count, 6, "3 clients in FIN_WAIT2, 3 servers in CLOSE_WAIT; the listener is not listed")
      XCTAssertFalse(read.values.contains { $0.state != .finWait2 && $0.state != .closeWait })
      // Each read walked its own namespace only; the test's holds nothing else.
      XCTAssertTrue(read.values.allSatisfy { $0.netns == netns })
      if netns != namespaces.own { XCTAssertEqual(read.count, 6) }

      let (tuned, plain, noLinger) = (conns.clients[0], conns.clients[1], conns.clients[2])
      XCTAssertEqual(read[tuned.endpoints], tuned.expected(
        .finWait2, netns: netns, cookies: reader.hasCookies, keepalive: true, keepaliveIdle: 37_000_000_000,
        keepaliveInterval: 11_000_000_000, keepaliveProbes: 4, linger2: .nanoseconds(23_000_000_000),
        userTimeoutMilliseconds: 1234))
      XCTAssertEqual(read[plain.endpoints], plain.expected(.finWait2, netns: netns, cookies: reader.hasCookies))
      XCTAssertEqual(read[noLinger.endpoints], noLinger.expected(.finWait2, netns: netns, cookies: reader.hasCookies, linger2: .off))
      for server in conns.servers {
        XCTAssertEqual(read[server.endpoints], server.expected(.closeWait, netns: netns, cookies: reader.hasCookies))
      }
    }
  }
}

/// One end of a loopback connection, with what the kernel should say of it.
private struct End {
  let fd: Int32
  let endpoints: Endpoints
  let inode: UInt64
  let cookie: UInt64

  init(fd: Int32) throws {
    self.fd = fd
    func address(_ get: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) throws -> (IPAddress, UInt16) {
      var sin = sockaddr_in()
      var length = socklen_t(MemoryLayout<sockaddr_in>.size)
      let rc = withUnsafeMutablePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { get(fd, $0, &length) } }
      guard rc == 0 else { throw LiveError("getsockname/getpeername: errno \(errno)") }
      let a = withUnsafeBytes(of: sin.sin_addr.s_addr) { Array($0) }
      return (.v4(a[0], a[1], a[2], a[3]), UInt16(bigEndian: sin.sin_port))
    }
    let local = try address { getsockname($0, $1, $2) }
    let remote = try address { getpeername($0, $1, $2) }
    endpoints = Endpoints(local: local.0, localPort: local.1, remote: remote.0, remotePort: remote.1)
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw LiveError("fstat: errno \(errno)") }
    inode = UInt64(st.st_ino)
    var cookie: UInt64 = 0
    var length = socklen_t(MemoryLayout<UInt64>.size)
    guard getsockopt(fd, SOL_SOCKET, 57 /* SO_COOKIE */, &cookie, &length) == 0 else { throw LiveError("SO_COOKIE: errno \(errno)") }
    self.cookie = cookie
  }

  func expected(
    _ state: DiagSocket.State, netns: UInt32, cookies: Bool, keepalive: Bool = false, keepaliveIdle: UInt64? = nil,
    keepaliveInterval: UInt64? = nil, keepaliveProbes: UInt8? = nil, linger2: SocketSettings.Linger2 = .default,
    userTimeoutMilliseconds: UInt32 = 0
  ) -> SocketSettings {
    // A client shut down for writing; a server in CLOSE_WAIT had the peer's FIN (tcp_fin sets RCV_SHUTDOWN).
    let shutdown: SocketSettings.Shutdown = state == .finWait2 ? .send : .receive
    return SocketSettings(
      endpoints: endpoints, state: state, inode: inode, cookie: cookies ? cookie : nil, netns: netns,
      keepalive: keepalive, keepaliveIdle: keepaliveIdle, keepaliveInterval: keepaliveInterval,
      keepaliveProbes: keepaliveProbes, linger2: linger2, userTimeoutMilliseconds: userTimeoutMilliseconds,
      shutdown: shutdown)
  }
}

/// Three loopback connections, each client shut down for writing (attached
/// FIN_WAIT2) while its server end stays open (CLOSE_WAIT): one with every
/// option, one with none, one with TCP_LINGER2 = -1.
private final class HalfClosedConnections {
  private var listener: Int32 = -1
  private(set) var clients: [End] = []
  private(set) var servers: [End] = []
  var all: [End] { clients + servers }

  init(port: UInt16) throws {
    listener = try Self.check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
    var one: Int32 = 1
    _ = setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var address = Self.loopback(port)
    try Self.check(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
      bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "bind")
    try Self.check(listen(listener, 8), "listen")
    let options: [[(Int32, Int32, Int32)]] = [
      [(SOL_SOCKET, SO_KEEPALIVE, 1), (Int32(IPPROTO_TCP), TCP_KEEPIDLE, 37), (Int32(IPPROTO_TCP), TCP_KEEPINTVL, 11),
       (Int32(IPPROTO_TCP), TCP_KEEPCNT, 4), (Int32(IPPROTO_TCP), TCP_LINGER2, 23),
       (Int32(IPPROTO_TCP), 18 /* TCP_USER_TIMEOUT */, 1234)],
      [],
      [(Int32(IPPROTO_TCP), TCP_LINGER2, -1)],
    ]
    for set in options {
      let client = try Self.check(socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0), "socket")
      for (level, name, value) in set {
        var v = value
        try Self.check(setsockopt(client, level, name, &v, socklen_t(MemoryLayout<Int32>.size)), "setsockopt \(name)")
      }
      try Self.check(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "connect")
      let server = try Self.check(accept(listener, nil, nil), "accept")
      clients.append(try End(fd: client))
      servers.append(try End(fd: server))
      try Self.check(shutdown(client, Int32(SHUT_WR)), "shutdown")
    }
  }

  func close() {
    for fd in all.map(\.fd) + [listener] where fd >= 0 { Glibc.close(fd) }
    clients = []
    servers = []
    listener = -1
  }

  private static func loopback(_ port: UInt16) -> sockaddr_in {
    var a = sockaddr_in()
    a.sin_family = sa_family_t(AF_INET)
    a.sin_port = port.bigEndian
    a.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return a
  }

  @discardableResult
  private static func check(_ rc: Int32, _ what: String) throws -> Int32 {
    guard rc >= 0 else { throw LiveError("\(what): errno \(errno)") }
    return rc
  }
}

/// Runs `body` on a thread of its own that entered the network namespace
/// `fd` refers to: sockets it creates belong to that namespace for good.
/// setns(2) is not in Swift's Glibc module; it is looked up in libc.
private func inNamespace<T>(_ fd: Int32, _ body: @escaping () throws -> T) throws -> T {
  typealias SetNS = @convention(c) (Int32, Int32) -> Int32
  guard let symbol = dlsym(nil, "setns") else { throw LiveError("setns not found in libc") }
  let setns = unsafeBitCast(symbol, to: SetNS.self)
  let done = DispatchSemaphore(value: 0)
  // Handed to one thread and read back only after it signalled.
  nonisolated(unsafe) let body = body
  nonisolated(unsafe) var result: Result<T, Error> = .failure(LiveError("namespace thread did not run"))
  let thread = Thread {
    defer { done.signal() }
    guard setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
      result = .failure(LiveError("setns: errno \(errno)"))
      return
    }
    result = Result { try body() }
  }
  thread.start()
  guard done.wait(timeout: .now() + 10) == .success else { throw LiveError("namespace thread did not finish in 10 s") }
  return try result.get()
}

import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// What happens at finwait's fixed limits: a full socket map.
final class LimitsTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  /// More attached FIN_WAIT2 connections than `--max-tracked` allows: the first
  /// ones fill the map and are reported as usual, the rest are counted in
  /// `map_full` and, once there is room again, their end is still reported
  /// (without the start finwait could not keep). finwait keeps running.
  func testFullSocketMapCountsUntrackedConnectionsAndReportsTheTrackedOnes() throws {
    let port = Live.port(28)
    let capacity = 64  // the smallest --max-tracked finwait accepts
    let extra = 8
    let finwait = try FinwaitProcess(
      ["--json", "--port", String(port), "--max-tracked", String(capacity), "--stuck", "off"])
    let held = try HeldConnections(port: port, count: capacity + extra)

    // One at a time, in this thread: shutdown() moves the socket to FIN_WAIT1
    // (and into the map) before it returns, so the first `capacity` fill it.
    for i in held.clients.indices {
      XCTAssertEqual(shutdown(held.clients[i], Int32(SHUT_WR)), 0)
    }
    XCTAssertTrue(waitUntil(10) { held.clients.allSatisfy { tcpState($0) == tcpFinWait2 } },
                  "every client reached FIN_WAIT2")
    let tracked = Set(held.clientPorts.prefix(capacity))
    let untracked = Set(held.clientPorts.suffix(extra))

    // The tracked ones end with the peer's FIN, which frees the map.
    for server in held.servers.prefix(capacity) { close(server) }
    XCTAssertTrue(finwait.waitForRecord(5) { _ in
      ((try? finwait.jsonRecords()) ?? []).filter { $0["type"] as? String == "fin_wait2" }.count >= capacity
    }, finwait.stdout.text)
    XCTAssertTrue(finwait.process.isRunning, "finwait survives a full map: \(finwait.stderr.text)")
    // Then the untracked ones end, with room in the map again.
    for server in held.servers.suffix(extra) { close(server) }
    usleep(500_000)  // drained every 100 ms
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    held.servers.removeAll()

    let records = try finwait.jsonRecords()
    let ends = records.filter { $0["type"] as? String == "fin_wait2" && $0["dport"] as? Int == port }
    func ports(_ matching: ([String: Any]) -> Bool) -> [Int] {
      ends.filter(matching).compactMap { $0["sport"] as? Int }.sorted()
    }
    // Tracked: one normal record each, owner, path and exact dwell.
    let normal = ends.filter { $0["path"] as? String == "shutdown_wr" }
    XCTAssertEqual(ports { $0["path"] as? String == "shutdown_wr" }, tracked.sorted())
    for r in normal {
      XCTAssertEqual(r["pid"] as? Int, Int(getpid()))
      XCTAssertEqual(r["end"] as? String, "peer_fin")
      XCTAssertEqual(r["orphaned"] as? Bool, false)
      XCTAssertNil(r["dwell_lower_bound"], "exact dwell: \(r)")
    }
    // Untracked: never in the map at FIN_WAIT1, so their end is reported as
    // a start finwait did not see: path unknown, no owner, a lower bound.
    XCTAssertEqual(ports { $0["path"] as? String == "unknown" }, untracked.sorted())
    for r in ends where r["path"] as? String == "unknown" {
      XCTAssertEqual(r["end"] as? String, "peer_fin")
      XCTAssertEqual(r["syscall"] as? String, "unknown")
      XCTAssertEqual(r["dwell_lower_bound"] as? Bool, true, "\(r)")
    }
    XCTAssertEqual(ends.count, capacity + extra, "one record per connection")

    let summary = try XCTUnwrap(records.last)
    XCTAssertEqual(summary["type"] as? String, "summary")
    XCTAssertEqual(summary["ringbuf_drops"] as? Int, 0)
    // map_full counts refused insertions: each untracked connection is refused
    // at FIN_WAIT1 and again at FIN_WAIT2 entry (the map is still full then).
    XCTAssertEqual(summary["map_full"] as? Int, 2 * extra, "\(summary)")
    // Each untracked connection also counts as a start not seen at FIN_WAIT2
    // entry (refused) and at its end (tracked from there).
    XCTAssertEqual(summary["unseen_start"] as? Int, 2 * extra, "\(summary)")
    XCTAssertEqual((summary["ends"] as? [String: Int])?["peer_fin"], capacity + extra)
    XCTAssertEqual((summary["ends"] as? [String: Int])?["tracer_exit"], 0,
                   "\(records.filter { $0["end"] as? String == "tracer_exit" })")
  }
}

let tcpFinWait2: UInt8 = 5

/// The kernel's TCP state of a socket (tcp_info.tcpi_state, its first byte).
func tcpState(_ fd: Int32) -> UInt8? {
  var info = [UInt8](repeating: 0, count: 256)
  var length = socklen_t(info.count)
  let ok = info.withUnsafeMutableBytes { getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, $0.baseAddress, &length) }
  return ok == 0 ? info[0] : nil
}

/// Loopback connections held open by the test process itself: a listener on
/// `port`, `count` clients and their accepted server sockets. Closes whatever
/// is left when released.
final class HeldConnections {
  private(set) var clients: [Int32] = []
  var servers: [Int32] = []
  private(set) var clientPorts: [Int] = []
  private let listener: Int32

  init(port: Int, count: Int) throws {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = in_addr_t(UInt32(0x7f00_0001).bigEndian)
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard listener >= 0 else { throw LiveError("socket: \(errno)") }
    var one: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) }
    }
    guard bound == 0, listen(listener, Int32(count)) == 0 else {
      close(listener)
      throw LiveError("bind/listen on \(port): \(errno)")
    }
    for _ in 0..<count {
      let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      guard client >= 0 else { throw LiveError("socket: \(errno)") }
      clients.append(client)
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
      }
      guard connected == 0 else { throw LiveError("connect: \(errno)") }
      let server = accept(listener, nil, nil)
      guard server >= 0 else { throw LiveError("accept: \(errno)") }
      servers.append(server)
      var local = sockaddr_in()
      var localLength = length
      _ = withUnsafeMutablePointer(to: &local) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &localLength) }
      }
      clientPorts.append(Int(UInt16(bigEndian: local.sin_port)))
    }
  }

  deinit {
    for fd in servers + clients + [listener] { close(fd) }
  }
}

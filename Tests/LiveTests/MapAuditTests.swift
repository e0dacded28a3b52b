import CFinwaitEvent
import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Transitions the BPF program did not see, recovered through sock_diag.
/// The kernel skips them under load (nested runs, bursts); here the map is
/// given the entries such a miss leaves behind, with bpftool, for sockets
/// the program filters out (another port), so nothing else touches them.
final class MapAuditTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  func testAMissedFinWait2StartIsRecoveredAndAGoneEntryDropped() throws {
    let traced = Live.port(29)
    let other = Live.port(30)
    let finwait = try FinwaitProcess(["--json", "--port", String(traced), "--stuck", "off"])
    let held = try HeldConnections(port: other, count: 1)
    let shutAt = Date()
    XCTAssertEqual(shutdown(held.clients[0], Int32(SHUT_WR)), 0)
    XCTAssertTrue(waitUntil(5) { tcpState(held.clients[0]) == tcpFinWait2 })

    // As the map looks when FIN_WAIT1 -> FIN_WAIT2 was skipped: a FIN_WAIT1
    // entry (old enough to audit) for a socket sock_diag shows in FIN_WAIT2;
    // and one for a socket that no longer exists at all.
    let clientPort = UInt16(held.clientPorts[0])
    let fin1 = monotonicNanoseconds() - 3_000_000_000
    let map = try socketMap(of: finwait.process.processIdentifier)
    try injectEntry(into: map, socket: 0xdead_0000_0001, localPort: clientPort, remotePort: UInt16(other), finWait1At: fin1)
    try injectEntry(into: map, socket: 0xdead_0000_0002, localPort: 1, remotePort: UInt16(other), finWait1At: fin1)
    // Audits run at start and every 5 s.
    usleep(6_000_000)
    let heldFor = Int(Date().timeIntervalSince(shutAt) * 1000)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)

    let all = try finwait.jsonRecords()
    let records = all.filter { $0["sport"] as? Int == Int(clientPort) }
    XCTAssertEqual(records.count, 1, "\(records)")
    let r = try XCTUnwrap(records.first)
    XCTAssertEqual(r["type"] as? String, "fin_wait2")
    XCTAssertEqual(r["end"] as? String, "tracer_exit")
    XCTAssertEqual(r["pid"] as? Int, Int(getpid()), "the owner the FIN_WAIT1 entry recorded")
    XCTAssertEqual(r["path"] as? String, "shutdown_wr")
    XCTAssertEqual(r["orphaned"] as? Bool, false)
    XCTAssertEqual(r["dwell_lower_bound"] as? Bool, true)
    // Dated from sock_diag's last-ACK age: no later than the real start.
    let dwell = (r["dwell_ns"] as? Int ?? 0) / 1_000_000
    XCTAssertGreaterThanOrEqual(dwell, heldFor - 1_000, "\(r)")
    XCTAssertLessThanOrEqual(dwell, heldFor + 1_000, "\(r)")
    let summary = try XCTUnwrap(all.last)
    XCTAssertEqual(summary["type"] as? String, "summary")
    XCTAssertEqual(summary["recovered_starts"] as? Int, 1, "\(summary)")
    XCTAssertEqual(summary["stale_entries"] as? Int, 1, "\(summary)")
  }

  /// The id of the `socks` map this finwait holds (another may run too).
  private func socketMap(of pid: Int32) throws -> String {
    let fdinfo = "/proc/\(pid)/fdinfo"
    for fd in try FileManager.default.contentsOfDirectory(atPath: fdinfo) {
      guard let text = try? String(contentsOfFile: fdinfo + "/" + fd, encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("map_id:") })
      else { continue }
      let id = line.dropFirst("map_id:".count).trimmingCharacters(in: .whitespaces)
      let show = try SpawnedProcess(["/usr/sbin/bpftool", "-j", "map", "show", "id", id])
      show.process.waitUntilExit()
      _ = waitUntil(2) { show.stdout.isClosed }
      if show.stdout.text.contains("\"name\":\"socks\"") { return id }
    }
    throw LiveError("finwait \(pid) holds no socks map")
  }

  private func injectEntry(into map: String, socket: UInt64, localPort: UInt16, remotePort: UInt16, finWait1At: UInt64) throws {
    var e = fw_event()
    e.skaddr = socket
    e.ts_fin_wait1_ns = finWait1At
    e.tgid = UInt32(getpid())
    e.tid = UInt32(getpid())
    e.netns = try ownNetworkNamespace()
    e.family = 2
    e.sport = localPort
    e.dport = remotePort
    withUnsafeMutableBytes(of: &e.saddr) { $0.copyBytes(from: [127, 0, 0, 1]) }
    withUnsafeMutableBytes(of: &e.daddr) { $0.copyBytes(from: [127, 0, 0, 1]) }
    e.path = UInt8(FW_PATH_SHUTDOWN_WR.rawValue)
    e.syscall = UInt8(FW_SYSCALL_SHUTDOWN.rawValue)
    e.syscall_nr = 48
    e.flags = UInt8(FW_FLAG_OWNER_KNOWN)
    withUnsafeMutableBytes(of: &e.comm) { $0.copyBytes(from: Array("xctest".utf8)) }
    let key = withUnsafeBytes(of: socket.littleEndian) { $0.map { String($0) } }
    let value = withUnsafeBytes(of: e) { $0.map { String($0) } }
    let bpftool = try SpawnedProcess(["/usr/sbin/bpftool", "map", "update", "id", map, "key"] + key
                                     + ["value"] + value + ["noexist"])
    bpftool.process.waitUntilExit()
    XCTAssertEqual(bpftool.process.terminationStatus, 0, bpftool.stderr.text)
  }

  private func ownNetworkNamespace() throws -> UInt32 {
    let link = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")  // net:[4026531840]
    return try XCTUnwrap(UInt32(link.dropFirst(5).dropLast()))
  }

  private func monotonicNanoseconds() -> UInt64 {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
  }
}

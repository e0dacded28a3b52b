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

  /// What one mode was given: the held connection's port and when it was shut.
  private struct Injected {
    let finwait: FinwaitProcess
    let held: HeldConnections
    let clientPort: UInt16
    let shutAt: Date
  }

  /// Starts finwait in `mode`, puts in its map the entries a skipped
  /// FIN_WAIT1 -> FIN_WAIT2 leaves behind (an entry still in FIN_WAIT1, old
  /// enough to audit, for a socket sock_diag shows in FIN_WAIT2) and one for a
  /// socket that no longer exists, for sockets the program filters out
  /// (another port). Returns once the audit acted on both: the first entry
  /// repaired, the second deleted, as the map shows (no fixed wait).
  private func injectAndAwaitAudit(_ mode: [String], traced: Int, other: Int) throws -> Injected {
    let finwait = try FinwaitProcess(mode + ["--port", String(traced)])
    let held = try HeldConnections(port: other, count: 1)
    let shutAt = Date()
    XCTAssertEqual(shutdown(held.clients[0], Int32(SHUT_WR)), 0)
    XCTAssertTrue(waitUntil(5) { tcpState(held.clients[0]) == tcpFinWait2 })
    let clientPort = UInt16(held.clientPorts[0])
    let fin1 = monotonicNanoseconds() - 3_000_000_000
    let map = try socketMap(of: finwait.process.processIdentifier)
    let recovered: UInt64 = 0xdead_0000_0001
    let gone: UInt64 = 0xdead_0000_0002
    try injectEntry(into: map, socket: recovered, localPort: clientPort, remotePort: UInt16(other), finWait1At: fin1)
    try injectEntry(into: map, socket: gone, localPort: 1, remotePort: UInt16(other), finWait1At: fin1)
    let seen = UInt8(FW_FLAG_FIN_WAIT2_SEEN | FW_FLAG_FIN_WAIT2_INFERRED)
    // Audits run at start and every 5 s (more under load): 30 s bounds it.
    func auditedBoth() throws -> Bool {
      guard let repaired = try entry(in: map, socket: recovered), repaired.flags & seen == seen else { return false }
      return try entry(in: map, socket: gone) == nil
    }
    let audited = waitUntil(30) { (try? auditedBoth()) == true }
    XCTAssertTrue(audited, "the audit repaired one entry and deleted the other: \(finwait.stderr.text)")
    return Injected(finwait: finwait, held: held, clientPort: clientPort, shutAt: shutAt)
  }

  func testTraceRecoversAMissedFinWait2StartAndDropsAGoneEntry() throws {
    let run = try injectAndAwaitAudit(["--json", "--stuck", "off"], traced: Live.port(29), other: Live.port(30))
    let heldFor = Int(Date().timeIntervalSince(run.shutAt) * 1000)
    XCTAssertEqual(try run.finwait.stop(), 0, run.finwait.stderr.text)
    // The tracer_exit dwell is stamped during the stop, so at most this long.
    let heldUntilStopped = Int(Date().timeIntervalSince(run.shutAt) * 1000)

    let all = try run.finwait.jsonRecords()
    let records = all.filter { $0["sport"] as? Int == Int(run.clientPort) }
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
    XCTAssertLessThanOrEqual(dwell, heldUntilStopped + 1_000, "\(r)")
    let summary = try XCTUnwrap(all.last)
    XCTAssertEqual(summary["type"] as? String, "summary")
    XCTAssertEqual(summary["recovered_starts"] as? Int, 1, "\(summary)")
    XCTAssertEqual(summary["stale_entries"] as? Int, 1, "\(summary)")
  }

  /// hist: the same audit; both findings in its loss account.
  func testHistRecoversAMissedFinWait2StartAndDropsAGoneEntry() throws {
    let run = try injectAndAwaitAudit(["hist", "-m", "-i", "1"], traced: Live.port(50), other: Live.port(51))
    XCTAssertEqual(try run.finwait.stop(), 0, run.finwait.stderr.text)
    let losses = try XCTUnwrap(run.finwait.stderr.lines.last { $0.hasPrefix("finwait: Losses: ") }, run.finwait.stderr.text)
    XCTAssertTrue(losses.contains("recovered_starts 1, stale_entries 1"), losses)
  }

  /// top: the recovered connection shows as now, under its owner.
  func testTopRecoversAMissedFinWait2StartAndShowsItAsNow() throws {
    let run = try injectAndAwaitAudit(["top", "-i", "1"], traced: Live.port(52), other: Live.port(53))
    let owner = "\(getpid()) "
    XCTAssertTrue(waitUntil(10) {
      run.finwait.stdout.lines.contains { $0.hasPrefix(owner) && $0.split(separator: " ").dropFirst(2).first == "1" }
    }, run.finwait.stdout.text)
    XCTAssertEqual(try run.finwait.stop(), 0, run.finwait.stderr.text)
    XCTAssertTrue(run.finwait.stdout.lines.contains { $0.hasPrefix("losses: ") && $0.contains("recovered_starts 1") },
                  run.finwait.stdout.text)
  }

  /// The map's entry for `socket`, or nil if it has none.
  private func entry(in map: String, socket: UInt64) throws -> fw_event? {
    let key = withUnsafeBytes(of: socket.littleEndian) { $0.map { String($0) } }
    let lookup = try SpawnedProcess(["/usr/sbin/bpftool", "-j", "map", "lookup", "id", map, "key"] + key)
    lookup.process.waitUntilExit()
    _ = waitUntil(2) { lookup.stdout.isClosed }
    guard lookup.process.terminationStatus == 0,
      let o = try JSONSerialization.jsonObject(with: Data(lookup.stdout.text.utf8)) as? [String: Any],
      let hex = o["value"] as? [String]
    else { return nil }
    let bytes = hex.compactMap { UInt8($0.dropFirst(2), radix: 16) }
    guard bytes.count == MemoryLayout<fw_event>.size else { throw LiveError("map value of \(bytes.count) bytes") }
    var e = fw_event()
    withUnsafeMutableBytes(of: &e) { $0.copyBytes(from: bytes) }
    return e
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

import CFinwaitEvent
import Foundation
import XCTest
@testable import FinwaitCore

final class FormatTests: XCTestCase {
  let clock = WallClock(offset: 1_795_000_000_000_000_000)  // 2026-11-18T...

  func record(_ dwell: Dwell, end: End?, kind: Record.Kind = .finWait2, path: fw_path = FW_PATH_CLOSE) -> Record {
    var h = TrackerHarness()
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 10, fw2: 5, end: FW_END_PEER_FIN, path: path))
    var r = h.records[0]
    r.kind = kind
    r.dwell = dwell
    r.end = end
    return r
  }

  func testJSONHasTheDocumentedKeysAndTypes() throws {
    let line = JSONFormat(clock: clock).line(record(.exact(300_000_000), end: .peerFin))
    let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    for key in ["type", "time", "pid", "tid", "comm", "cgroup_id", "family", "saddr", "sport",
                "daddr", "dport", "path", "syscall", "orphaned", "dwell_ns", "end"] {
      XCTAssertNotNil(o[key], "missing \(key)")
    }
    XCTAssertEqual(o["type"] as? String, "fin_wait2")
    XCTAssertEqual(o["pid"] as? Int, 4242)
    XCTAssertEqual(o["comm"] as? String, "nginx")
    XCTAssertEqual(o["family"] as? String, "ipv4")
    XCTAssertEqual(o["saddr"] as? String, "10.0.0.1")
    XCTAssertEqual(o["dport"] as? Int, 8080)
    XCTAssertEqual(o["path"] as? String, "close")
    XCTAssertEqual(o["dwell_ns"] as? Int, 300_000_000)
    XCTAssertEqual(o["end"] as? String, "peer_fin")
    XCTAssertEqual(o["orphaned"] as? Bool, false)
    XCTAssertEqual(o["time"] as? String, "2026-11-18T11:06:40.000000Z")
  }

  func testJSONPendingOrphanHasNoDwellAndStuckHasNoEnd() throws {
    let pending = JSONFormat(clock: clock).line(record(.pending(observed: 5_000), end: .timewaitOrphan))
    let p = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(pending.utf8)) as? [String: Any])
    XCTAssertTrue(p["dwell_ns"] is NSNull)
    XCTAssertEqual(p["dwell_pending"] as? Bool, true)
    XCTAssertEqual(p["fullsock_dwell_ns"] as? Int, 5_000)

    let stuck = JSONFormat(clock: clock).line(record(.atLeast(61_000_000_000), end: nil, kind: .stuck))
    let s = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stuck.utf8)) as? [String: Any])
    XCTAssertEqual(s["type"] as? String, "stuck")
    XCTAssertNil(s["end"])
    XCTAssertEqual(s["dwell_ns"] as? Int, 61_000_000_000)
  }

  func testJSONEscapesStrings() throws {
    var o = JSONObject()
    o.add("comm", string: "a\"b\\c\nd\u{1}")
    let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(o.closed.utf8)) as? [String: Any])
    XCTAssertEqual(parsed["comm"] as? String, "a\"b\\c\nd\u{1}")
  }

  func testTextLineColumns() {
    let text = TextFormat(clock: clock)
    XCTAssertTrue(text.header.hasPrefix("TIME     PID     COMM"))
    let line = text.line(record(.exact(301_200_000), end: .peerFin))
    XCTAssertTrue(line.contains("4242"), line)
    XCTAssertTrue(line.contains("nginx"), line)
    XCTAssertTrue(line.contains("10.0.0.1:41234 > 10.0.0.2:8080"), line)
    XCTAssertTrue(line.contains("301.2ms"), line)
    XCTAssertTrue(line.hasSuffix("peer_fin"), line)
    XCTAssertTrue(text.line(record(.pending(observed: 1), end: .timewaitOrphan)).contains("pending"))
    XCTAssertTrue(text.line(record(.atLeast(2_000_000_000), end: nil, kind: .stuck)).hasSuffix("STUCK (still in FIN_WAIT2)"))
  }

  func testPathNamesTheSyscallWhenItWasNotClose() {
    var r = record(.exact(1), end: .peerFin)
    r.connection.syscall = .dup2
    XCTAssertEqual(TextFormat.pathText(r), "close(dup2)")
    r.connection.syscall = .close
    XCTAssertEqual(TextFormat.pathText(r), "close")
  }

  func testIPv6Text() {
    XCTAssertEqual(IPAddress.v6(high: 0, low: 1).description, "::1")
    XCTAssertEqual(IPAddress.v6(high: 0x2001_0db8_0000_0000, low: 0x0000_0000_0000_0001).description, "2001:db8::1")
    XCTAssertEqual(IPAddress.v6(high: 0, low: 0x0000_ffff_7f00_0001).description, "::ffff:127.0.0.1")
    XCTAssertEqual(IPAddress.v6(high: 0x2001_0db8_0001_0000, low: 0x0000_0001_0000_0001).description, "2001:db8:1::1:0:1")
    XCTAssertEqual(Endpoints.text(.v6(high: 0, low: 1), 80), "[::1]:80")
  }

  func testDurations() {
    XCTAssertEqual(formatDuration(nanoseconds: 850), "850ns")
    XCTAssertEqual(formatDuration(nanoseconds: 12_340), "12.3us")
    XCTAssertEqual(formatDuration(nanoseconds: 301_240_000), "301.2ms")
    XCTAssertEqual(formatDuration(nanoseconds: 3_010_000_000), "3.01s")
    XCTAssertEqual(formatDuration(nanoseconds: 302_000_000_000), "5m02s")
    XCTAssertEqual(formatDuration(nanoseconds: 7_380_000_000_000), "2h03m")
  }

  func testParsesDurations() {
    XCTAssertEqual(parseDuration("250ms"), 250_000_000)
    XCTAssertEqual(parseDuration("1.5s"), 1_500_000_000)
    XCTAssertEqual(parseDuration("2m"), 120_000_000_000)
    XCTAssertEqual(parseDuration("1h"), 3_600_000_000_000)
    XCTAssertEqual(parseDuration("800us"), 800_000)
    XCTAssertEqual(parseDuration("60"), 60_000_000_000)
    for bad in ["", "ms", "-1s", "1.2.3s", "abc", "1e3", "99999999999h", "1 s"] {
      XCTAssertNil(parseDuration(bad), bad)
    }
  }
}

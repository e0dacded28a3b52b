import CFinwaitEvent
import Foundation
import XCTest
@testable import FinwaitCore

final class JSONFormatTests: XCTestCase {
  let clock = WallClock(offset: 1_795_000_000_000_000_000)  // 2026-11-18T11:06:40Z

  func testJSONHasTheDocumentedKeysAndTypes() throws {
    let line = JSONFormat(clock: clock).line(Fixture.record(.exact(300_000_000), end: .peerFin))
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
    let pending = JSONFormat(clock: clock).line(Fixture.record(.pending(observed: 5_000), end: .timewaitOrphan))
    let p = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(pending.utf8)) as? [String: Any])
    XCTAssertTrue(p["dwell_ns"] is NSNull)
    XCTAssertEqual(p["dwell_pending"] as? Bool, true)
    XCTAssertEqual(p["fullsock_dwell_ns"] as? Int, 5_000)

    let stuck = JSONFormat(clock: clock).line(Fixture.record(.atLeast(61_000_000_000), end: nil, kind: .stuck))
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
}

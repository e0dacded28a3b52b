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

final class WorkloadOutputTests: XCTestCase {
  func testOwnerAndPeerContainersInTextAndJSON() throws {
    let id = "c0ffee00" + String(repeating: "ab12", count: 14)
    let peerID = "deadbeef" + String(repeating: "cd34", count: 14)
    var r = Fixture.record(.exact(2_000_000), end: .peerFin)
    r.workload = Workload(containerID: id, podUID: "5d0c9a4e-7b1f-4c2d-8e3a-9f0b1c2d3e4f")
    r.peer = Peer(netns: 1, closeWaitSince: 1, closedAt: 5, owner: Owner(pid: 77, tid: 77, comm: "envoy", cgroupID: 9))
    r.peerWorkload = Workload(containerID: peerID, podUID: "6e1d0b5f-8c20-4d3e-9f4b-a01c2d3e4f50")
    let text = TextFormat(clock: WallClock(offset: 0)).line(r)
    XCTAssertTrue(text.contains(" container=c0ffee00ab12 pod=5d0c9a4e-7b1f-4c2d-8e3a-9f0b1c2d3e4f"), text)
    XCTAssertTrue(text.contains(" peer=77/envoy peer_container=deadbeefcd34 peer_pod=6e1d0b5f-8c20-4d3e-9f4b-a01c2d3e4f50"), text)
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONFormat(clock: WallClock(offset: 0)).line(r).utf8)) as? [String: Any])
    XCTAssertEqual(json["container_id"] as? String, id)
    XCTAssertEqual(json["peer_container_id"] as? String, peerID)
    XCTAssertEqual(json["peer_pod_uid"] as? String, "6e1d0b5f-8c20-4d3e-9f4b-a01c2d3e4f50")
    r.peerWorkload = nil
    let host = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONFormat(clock: WallClock(offset: 0)).line(r).utf8)) as? [String: Any])
    XCTAssertNil(host["peer_container_id"])
    XCTAssertEqual(host["peer_pid"] as? Int, 77)
  }
}

import CFinwaitEvent
import Foundation
import XCTest
@testable import FinwaitCore

final class SummaryTests: XCTestCase {
  func testCountsEndsAndHistogramsOnlyExactDwells() throws {
    var h = TrackerHarness(stuckAfter: 100)
    h.feed(
      Fixture.event(FW_KIND_ENTER, socket: 1, ts: 0, fw2: 1),
      Fixture.event(FW_KIND_LEAVE, socket: 1, ts: 300_001, fw2: 1, end: FW_END_PEER_FIN),
      Fixture.event(FW_KIND_LEAVE, socket: 2, ts: 10, fw2: 5, end: FW_END_TIMEWAIT_ORPHAN,
                    orphanAtEntry: true, path: FW_PATH_CLOSE),
      Fixture.event(FW_KIND_ENTER, socket: 3, ts: 0, fw2: 1))
    h.tick(1_000)
    h.finish(5_000_000_000)
    var summary = Summary()
    for r in h.records { summary.add(r) }
    XCTAssertEqual(summary.ends[.peerFin], 1)
    XCTAssertEqual(summary.ends[.timewaitOrphan], 1)
    XCTAssertEqual(summary.ends[.tracerExit], 1)
    XCTAssertEqual(summary.stuck, 1)
    XCTAssertEqual(summary.dwellByPath[.shutdownWrite]?.total, 1)
    XCTAssertNil(summary.dwellByPath[.close], "a pending orphan has no dwell to histogram")

    let losses = Summary.Losses(kernel: KernelCounters(ringbufDrops: 3, mapFull: 1, unseenStart: 2),
                                tracker: .init(), undecodable: 0)
    let text = summary.text(losses: losses, tracedFor: 5_000_000_000).joined(separator: "\n")
    XCTAssertTrue(text.contains("path = shutdown_wr"), text)
    XCTAssertTrue(text.contains("Ends: peer_fin 1, reset 0, timewait_orphan 1, timeout 0, tracer_exit 1, lost 0"), text)
    XCTAssertTrue(text.contains("ring buffer drops 3"), text)
    XCTAssertTrue(text.contains("Still in FIN_WAIT2 at exit: 1, oldest >= 5.00s"), text)

    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(summary.json(losses: losses, tracedFor: 1).utf8)) as? [String: Any])
    XCTAssertEqual(json["type"] as? String, "summary")
    XCTAssertEqual(json["ringbuf_drops"] as? Int, 3)
    XCTAssertEqual(json["map_full"] as? Int, 1)
    let paths = try XCTUnwrap(json["dwell_by_path"] as? [String: Any])
    let wr = try XCTUnwrap(paths["shutdown_wr"] as? [String: Any])
    XCTAssertEqual(wr["count"] as? Int, 1)
    XCTAssertEqual((wr["log2_usecs"] as? [Int])?.last, 1)
  }
}

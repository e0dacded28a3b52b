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

    let losses = LossAccount(kernel: KernelCounters(ringbufDrops: 3, mapFull: 1, unseenStart: 2),
                                tracker: .init(), undecodable: 0)
    let text = summary.text(losses: losses, tracedFor: 5_000_000_000).joined(separator: "\n")
    XCTAssertTrue(text.contains("path = shutdown_wr"), text)
    XCTAssertTrue(text.contains("Ends: peer_fin 1, reset 0, timewait_orphan 1, timeout 0, tracer_exit 1, lost 0"), text)
    XCTAssertTrue(text.contains("Losses: ringbuf_drops 3, map_full 1, lost_ends 0"), text)
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

  func testPercentilesOfExactDwellsPerPathAndOverall() throws {
    var summary = Summary()
    // 1..1000 ms on shutdown_wr, 2 s once on close; a pending orphan and a
    // lower bound never count.
    for ms in 1...1000 {
      summary.add(Fixture.record(.exact(UInt64(ms) * 1_000_000), end: .peerFin, path: FW_PATH_SHUTDOWN_WR))
    }
    summary.add(Fixture.record(.exact(2_000_000_000), end: .timeout, path: FW_PATH_CLOSE))
    summary.add(Fixture.record(.pending(observed: 5), end: .timewaitOrphan, path: FW_PATH_CLOSE))
    summary.add(Fixture.record(.atLeast(9_000_000_000), end: .tracerExit, path: FW_PATH_CLOSE))

    let wr = summary.percentiles(of: .shutdownWrite)
    XCTAssertEqual(wr.count, 1000)
    // Two significant digits: within 1% of the exact order statistic, never below it.
    for (p, exact) in [(50.0, 500_000), (90.0, 900_000), (99.0, 990_000), (99.9, 999_000)] {
      let us = wr.microseconds(at: p)
      XCTAssertGreaterThanOrEqual(us, UInt64(exact), "p\(p)")
      XCTAssertLessThanOrEqual(Double(us), Double(exact) * 1.01, "p\(p)")
    }
    XCTAssertEqual(summary.percentiles(of: .close).count, 1)
    XCTAssertEqual(summary.allPercentiles.count, 1001)
    XCTAssertGreaterThanOrEqual(summary.allPercentiles.microseconds(at: 100), 2_000_000)

    let losses = LossAccount(kernel: KernelCounters(), tracker: .init(), undecodable: 0)
    let text = summary.text(losses: losses, tracedFor: 1).joined(separator: "\n")
    XCTAssertTrue(text.contains("p50 501.8ms  p90 901.1ms  p99 991.2ms  p99.9 999.4ms  max 1.00s"), text)
    XCTAssertTrue(text.contains("all paths: p50 "), text)

    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(summary.json(losses: losses, tracedFor: 1).utf8)) as? [String: Any])
    let paths = try XCTUnwrap(json["dwell_by_path"] as? [String: Any])
    let close = try XCTUnwrap((paths["close"] as? [String: Any])?["percentiles_us"] as? [String: Int])
    XCTAssertEqual(Set(close.keys), ["p50", "p90", "p99", "p99_9", "max"])
    XCTAssertEqual(close["max"], 2_000_000, "the maximum is exact")
    let all = try XCTUnwrap(json["dwell_percentiles_us"] as? [String: Int])
    XCTAssertGreaterThanOrEqual(all["p50"] ?? 0, 500_000)
  }

  /// A counter the kernel does not keep reads n/a (text) and null (JSON), never 0.
  func testAnUncountedLossIsUnknownNotZero() throws {
    var kernel = KernelCounters(ringbufDrops: 2)
    kernel.recursionMissesCounted = false
    let losses = LossAccount(kernel: kernel)
    XCTAssertFalse(losses.isCounted(.recursionMisses))
    XCTAssertTrue(losses.isCounted(.ringbufDrops))
    XCTAssertTrue(losses.text.contains("recursion_misses n/a"), losses.text)
    XCTAssertTrue(losses.text.contains("ringbuf_drops 2"), losses.text)
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(Summary().json(losses: losses, tracedFor: 1).utf8)) as? [String: Any])
    XCTAssertTrue(json["recursion_misses"] is NSNull, "\(json)")
    XCTAssertEqual(json["ringbuf_drops"] as? Int, 2)

    kernel.recursionMissesCounted = true
    kernel.recursionMisses = 0
    XCTAssertTrue(LossAccount(kernel: kernel).text.contains("recursion_misses 0"))
  }
}

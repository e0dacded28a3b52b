import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class ConnectionTrackerTests: XCTestCase {
  let ms = Fixture.ms

  func testAttachedConnectionGetsItsExactDwell() {
    var h = TrackerHarness()
    h.feed(
      Fixture.event(FW_KIND_ENTER, ts: 100 * ms, fw2: 100 * ms),
      Fixture.event(FW_KIND_LEAVE, ts: 400 * ms, fw2: 100 * ms, end: FW_END_PEER_FIN))
    XCTAssertEqual(h.records.count, 1)
    let r = h.records[0]
    XCTAssertEqual(r.kind, .finWait2)
    XCTAssertEqual(r.dwell, .exact(300 * ms))
    XCTAssertEqual(r.end, .peerFin)
    XCTAssertEqual(r.connection.owner?.pid, 4242)
    XCTAssertFalse(r.orphaned)
    XCTAssertEqual(h.tracker.attachedInFinWait2, 0)
  }

  func testOrphanHandedToTimewaitIsPendingNeverAZeroDwell() {
    var h = TrackerHarness()
    h.feed(Fixture.event(
      FW_KIND_LEAVE, ts: 100 * ms + 6_000, fw2: 100 * ms, end: FW_END_TIMEWAIT_ORPHAN,
      orphanAtEntry: true, orphanAtEnd: true, path: FW_PATH_CLOSE))
    XCTAssertEqual(h.records.map(\.dwell), [.pending(observed: 6_000)])
    XCTAssertEqual(h.records.first?.orphaned, true)
    XCTAssertEqual(h.records.first?.end, .timewaitOrphan)
  }

  func testAttachedThenClosedBecomesOrphanedAtEnd() {
    var h = TrackerHarness()
    h.feed(
      Fixture.event(FW_KIND_ENTER, ts: 0, fw2: 1),
      Fixture.event(FW_KIND_LEAVE, ts: 300 * ms, fw2: 1, end: FW_END_TIMEWAIT_ORPHAN, orphanAtEnd: true))
    let r = h.records[0]
    XCTAssertFalse(r.connection.orphanedAtEntry)
    XCTAssertTrue(r.orphaned)
    XCTAssertEqual(r.dwell, .pending(observed: 300 * ms - 1))
  }

  func testStartNotSeenGivesALowerBoundFromTracingStart() {
    var h = TrackerHarness(tracingSince: 50 * ms)
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 250 * ms, end: FW_END_PEER_FIN, owner: nil, path: FW_PATH_UNKNOWN))
    XCTAssertEqual(h.records.map(\.dwell), [.atLeast(200 * ms)])
    XCTAssertNil(h.records[0].connection.owner)
  }

  func testLeaveWithoutItsEnterStillReportsEverything() {
    var h = TrackerHarness()  // the enter record was dropped
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 400 * ms, fw2: 100 * ms, end: FW_END_RESET))
    XCTAssertEqual(h.records.map(\.dwell), [.exact(300 * ms)])
    XCTAssertEqual(h.records[0].connection.owner?.comm, "nginx")
  }

  func testEnterArrivingAfterItsLeaveIsIgnored() {
    var h = TrackerHarness(stuckAfter: 1 * ms)
    h.feed(
      Fixture.event(FW_KIND_LEAVE, ts: 400 * ms, fw2: 100 * ms, end: FW_END_PEER_FIN),
      Fixture.event(FW_KIND_ENTER, ts: 100 * ms, fw2: 100 * ms))
    h.tick(10_000 * ms)
    h.finish(20_000 * ms)
    XCTAssertEqual(h.records.count, 1, "a late enter must not become a stuck or tracer_exit record")
    XCTAssertEqual(h.tracker.counters.lateEnters, 1)
  }

  func testReusedSocketAddressEndsTheOlderConnectionAsLost() {
    var h = TrackerHarness()
    h.feed(
      Fixture.event(FW_KIND_ENTER, ts: 100, fw2: 100),
      Fixture.event(FW_KIND_ENTER, ts: 900, fw2: 900, owner: (7, "other")))
    XCTAssertEqual(h.records.map(\.end), [.lost])
    XCTAssertEqual(h.records[0].connection.owner?.pid, 4242)
    XCTAssertEqual(h.tracker.counters.lostEnds, 1)
    XCTAssertEqual(h.tracker.attachedInFinWait2, 1)
  }

  func testDuplicateEnterIsHarmless() {
    var h = TrackerHarness()
    let enter = Fixture.event(FW_KIND_ENTER, ts: 100, fw2: 100)
    h.feed(enter, enter)
    XCTAssertTrue(h.records.isEmpty)
    XCTAssertEqual(h.tracker.attachedInFinWait2, 1)
  }

  func testStuckIsReportedOnceWhileStillStuck() {
    var h = TrackerHarness(stuckAfter: 1_000 * ms)
    h.feed(
      Fixture.event(FW_KIND_ENTER, socket: 1, ts: 0, fw2: 1),
      Fixture.event(FW_KIND_ENTER, socket: 2, ts: 500 * ms, fw2: 500 * ms))
    h.tick(999 * ms)
    XCTAssertTrue(h.records.isEmpty)
    h.tick(1_200 * ms)
    XCTAssertEqual(h.records.map(\.kind), [.stuck])
    XCTAssertEqual(h.records[0].connection.socket, 1)
    XCTAssertEqual(h.records[0].dwell, .atLeast(1_200 * ms - 1))
    XCTAssertNil(h.records[0].end)
    h.tick(5_000 * ms)
    XCTAssertEqual(h.records.map(\.connection.socket), [1, 2], "each connection is reported once")
    h.tick(9_000 * ms)
    XCTAssertEqual(h.records.count, 2)
  }

  func testConnectionThatEndedBeforeTheThresholdIsNotStuck() {
    var h = TrackerHarness(stuckAfter: 1_000 * ms)
    h.feed(
      Fixture.event(FW_KIND_ENTER, ts: 0, fw2: 1),
      Fixture.event(FW_KIND_LEAVE, ts: 500 * ms, fw2: 1, end: FW_END_PEER_FIN))
    h.tick(2_000 * ms)
    XCTAssertEqual(h.records.map(\.kind), [.finWait2])
  }

  func testNoStuckWarningsWhenOff() {
    var h = TrackerHarness(stuckAfter: nil)
    h.feed(Fixture.event(FW_KIND_ENTER, ts: 0, fw2: 1))
    h.tick(UInt64.max / 2)
    XCTAssertTrue(h.records.isEmpty)
  }

  func testFinishEndsOpenAndKernelOnlyConnectionsOnce() {
    var h = TrackerHarness(tracingSince: 10)
    h.feed(Fixture.event(FW_KIND_ENTER, socket: 1, ts: 100, fw2: 100))
    let inFlight = [
      Fixture.event(FW_KIND_IN_FLIGHT, socket: 1, ts: 100, fw2: 100),  // same as the open one
      Fixture.event(FW_KIND_IN_FLIGHT, socket: 2, ts: 300, fw2: 300, orphanAtEntry: true),
    ]
    h.finish(1_000, inFlight: inFlight)
    XCTAssertEqual(h.records.map(\.connection.socket), [1, 2])
    XCTAssertEqual(h.records.map(\.end), [.tracerExit, .tracerExit])
    XCTAssertEqual(h.records.map(\.dwell), [.atLeast(900), .atLeast(700)])
    XCTAssertEqual(h.records[1].orphaned, true)
    XCTAssertEqual(h.tracker.attachedInFinWait2, 0)
  }

  func testManyConnectionsStayBounded() {
    var h = TrackerHarness(stuckAfter: 10)
    for i in 0..<10_000 as Range<UInt64> {
      h.feed(
        Fixture.event(FW_KIND_ENTER, socket: i, ts: i * 10, fw2: i * 10 + 1),
        Fixture.event(FW_KIND_LEAVE, socket: i, ts: i * 10 + 5, fw2: i * 10 + 1, end: FW_END_PEER_FIN))
      h.tick(i * 10 + 6)
    }
    XCTAssertEqual(h.records.count, 10_000)
    XCTAssertTrue(h.records.allSatisfy { $0.dwell == .exact(4) })
    XCTAssertEqual(h.tracker.attachedInFinWait2, 0)
  }

  func testEndedConnectionsDoNotPileUpBeforeALongStuckThreshold() {
    var h = TrackerHarness(stuckAfter: 3_600 * 1_000_000_000)
    h.feed(Fixture.event(FW_KIND_ENTER, socket: 999_999, ts: 1, fw2: 1))  // stays stuck
    for i in 1...50_000 as ClosedRange<UInt64> {
      h.feed(
        Fixture.event(FW_KIND_ENTER, socket: i, ts: i * 10, fw2: i * 10 + 1),
        Fixture.event(FW_KIND_LEAVE, socket: i, ts: i * 10 + 5, fw2: i * 10 + 1, end: FW_END_PEER_FIN))
    }
    XCTAssertLessThanOrEqual(h.tracker.queuedForStuckCheck, 2 * h.tracker.attachedInFinWait2 + 1025)
    h.tick(3_600 * 1_000_000_000 + 2)
    XCTAssertEqual(h.records.filter { $0.kind == .stuck }.map(\.connection.socket), [999_999],
                   "the one still open is reported after the queue was compacted")
  }
}

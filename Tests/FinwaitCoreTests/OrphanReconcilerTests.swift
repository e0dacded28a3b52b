import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class OrphanReconcilerTests: XCTestCase {
  let s: UInt64 = 1_000_000_000
  let ms: UInt64 = 1_000_000

  /// A tracker following one orphan handed to timewait at 10 s (FIN_WAIT2 from 10 s).
  func following() -> TrackerHarness {
    var h = TrackerHarness(reconcilesOrphans: true)
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 10 * s + 5_000, fw2: 10 * s, end: FW_END_TIMEWAIT_ORPHAN,
                         orphanAtEntry: true, orphanAtEnd: true, path: FW_PATH_CLOSE))
    XCTAssertTrue(h.records.isEmpty, "held until its real end")
    XCTAssertEqual(h.tracker.orphans?.count, 1)
    return h
  }

  var endpoints: Endpoints { Fixture.event(FW_KIND_ENTER, ts: 1).connection.endpoints }

  func timewait(_ state: DiagSocket.State, remaining: UInt64) -> DiagSocket {
    DiagSocket(state: state, endpoints: endpoints, timer: 3, expiresMilliseconds: UInt32(remaining / ms))
  }

  func testLocalPeerClosingGivesTheExactEnd() {
    var h = following()
    var close = Fixture.event(FW_KIND_PEER_CLOSE, ts: 11 * s)
    close.peer = Peer(netns: 7, closeWaitSince: 10 * s, closedAt: 11 * s, owner: Owner(pid: 9, tid: 9, comm: "app", cgroupID: 1))
    h.feed(close)
    XCTAssertEqual(h.records.map(\.end), [.peerFin])
    XCTAssertEqual(h.records[0].dwell, .exact(1 * s))
    XCTAssertEqual(h.records[0].peer?.owner?.comm, "app")
    XCTAssertEqual(h.records[0].peer?.closeWait(now: 0), 1 * s)
    XCTAssertEqual(h.tracker.orphans?.count, 0)
  }

  func testTimeWaitTimerTellsWhenThePeersFinArrived() {
    var h = following()
    // At 13 s the socket is in TIME_WAIT with 58.5 s left: the FIN came at 11.5 s.
    h.observe(netns: 0, [timewait(.timeWait, remaining: 58_500 * ms)], at: 13 * s, finTimeout: 60 * s)
    XCTAssertEqual(h.records.map(\.end), [.peerFin])
    XCTAssertEqual(h.records[0].timestamp, 11_500 * ms)
    XCTAssertEqual(h.records[0].dwell, .exact(1_500 * ms))
  }

  func testGoneAtTheDeadlineIsATimeout() {
    var h = following()
    h.observe(netns: 0, [timewait(.finWait2, remaining: 2_000 * ms)], at: 11 * s, finTimeout: 3 * s)
    XCTAssertTrue(h.records.isEmpty, "still pending, deadline 13 s")
    h.observe(netns: 0, [], at: 13_100 * ms, finTimeout: 3 * s)
    XCTAssertTrue(h.records.isEmpty, "one miss proves nothing: dumps can skip sockets")
    h.observe(netns: 0, [], at: 13_350 * ms, finTimeout: 3 * s)
    XCTAssertEqual(h.records.map(\.end), [.timeout])
    XCTAssertEqual(h.records[0].timestamp, 13 * s)
    XCTAssertEqual(h.records[0].dwell, .exact(3 * s))
  }

  func testGoneLongBeforeTheDeadlineIsAReset() {
    var h = following()
    h.observe(netns: 0, [timewait(.finWait2, remaining: 50 * s)], at: 11 * s, finTimeout: 60 * s)
    h.observe(netns: 0, [], at: 12 * s, finTimeout: 60 * s)
    h.observe(netns: 0, [timewait(.finWait2, remaining: 49 * s)], at: 12_250 * ms, finTimeout: 60 * s)
    h.observe(netns: 0, [], at: 12_500 * ms, finTimeout: 60 * s)
    XCTAssertTrue(h.records.isEmpty, "missed once, seen again: still pending")
    h.observe(netns: 0, [], at: 12_750 * ms, finTimeout: 60 * s)
    XCTAssertEqual(h.records.map(\.end), [.reset])
  }

  func testNeverSeenUsesTheNamespaceFinTimeout() {
    var h = following()
    h.observe(netns: 0, [], at: 10 * s + 100 * ms, finTimeout: 3 * s)
    h.observe(netns: 0, [], at: 10 * s + 200 * ms, finTimeout: 3 * s)
    XCTAssertTrue(h.records.isEmpty, "too early to judge")
    h.observe(netns: 0, [], at: 12_500 * ms, finTimeout: 3 * s)
    XCTAssertEqual(h.records.map(\.end), [.timeout])
    h = following()
    h.observe(netns: 0, [], at: 19 * s, finTimeout: 60 * s)
    h.observe(netns: 0, [], at: 20 * s, finTimeout: 60 * s)
    XCTAssertEqual(h.records.map(\.end), [.timewaitOrphan], "vanished early, never seen: end unknown, said so")
    XCTAssertEqual(h.records[0].dwell, .pending(observed: 5_000))
  }

  func testOtherNamespacesAreUntouched() {
    var h = following()
    h.observe(netns: 42, [], at: 100 * s, finTimeout: 1 * s)
    XCTAssertTrue(h.records.isEmpty)
    XCTAssertEqual(h.tracker.orphans?.namespaces, [0])
  }

  func testStillPendingAtExitShowsItsDeadline() {
    var h = following()
    h.observe(netns: 0, [timewait(.finWait2, remaining: 40 * s)], at: 20 * s, finTimeout: 60 * s)
    h.finish(25 * s)
    XCTAssertEqual(h.records.map(\.end), [.tracerExit])
    XCTAssertEqual(h.records[0].deadline, 60 * s)
    XCTAssertEqual(h.records[0].dwell, .atLeast(15 * s))
  }

  func testAttachedConnectionKeepsItsPeersClose() {
    var h = TrackerHarness(reconcilesOrphans: true)
    var enter = Fixture.event(FW_KIND_ENTER, ts: 1 * s, fw2: 1 * s)
    enter.peer = Peer(netns: 5, closeWaitSince: 1 * s)
    var close = Fixture.event(FW_KIND_PEER_CLOSE, ts: 4 * s)
    close.peer = Peer(netns: 5, closeWaitSince: 1 * s, closedAt: 4 * s, owner: Owner(pid: 3, tid: 3, comm: "slow", cgroupID: 1))
    h.feed(enter, close, Fixture.event(FW_KIND_LEAVE, ts: 4 * s + 1, fw2: 1 * s, end: FW_END_PEER_FIN))
    XCTAssertEqual(h.records.count, 1)
    XCTAssertEqual(h.records[0].peer?.owner?.pid, 3)
    XCTAssertEqual(h.records[0].peer?.closeWait(now: 99 * s), 3 * s)
  }

  /// tcp_fin_timeout or TCP_LINGER2 above a minute (or the ACK of its FIN
  /// handled while close() still held the socket): the orphan stays a full
  /// socket in FIN_WAIT2, without an enter record, and its peer's close comes
  /// before the leave that the peer's FIN brings.
  func testAnOrphanKeptAsAFullSocketKeepsItsPeersClose() {
    for reconciles in [true, false] {
      var h = TrackerHarness(reconcilesOrphans: reconciles)
      var close = Fixture.event(FW_KIND_PEER_CLOSE, ts: 4 * s)
      close.peer = Peer(netns: 5, closeWaitSince: 1 * s, closedAt: 4 * s, owner: Owner(pid: 3, tid: 3, comm: "slow", cgroupID: 1))
      var leave = Fixture.event(FW_KIND_LEAVE, ts: 4 * s + 1, fw2: 1 * s, end: FW_END_PEER_FIN, orphanAtEntry: true,
                                orphanAtEnd: true, path: FW_PATH_CLOSE)
      leave.peer = Peer(netns: 5, closeWaitSince: 1 * s)
      h.feed(close, leave)
      XCTAssertEqual(h.records.count, 1)
      XCTAssertEqual(h.records[0].peer?.owner?.pid, 3, "reconciles: \(reconciles)")
      XCTAssertEqual(h.records[0].peer?.closeWait(now: 99 * s), 3 * s)
      XCTAssertEqual(h.records[0].dwell, .exact(3 * s + 1))
    }
  }

  func testAPeersCloseIsNotGivenToAnotherConnectionOnItsSocket() {
    var h = TrackerHarness(reconcilesOrphans: true)
    var close = Fixture.event(FW_KIND_PEER_CLOSE, ts: 4 * s)
    close.peer = Peer(netns: 5, closeWaitSince: 1 * s, closedAt: 4 * s, owner: Owner(pid: 3, tid: 3, comm: "slow", cgroupID: 1))
    // The same socket address, reused by a connection on other ports.
    var leave = Fixture.event(FW_KIND_LEAVE, ts: 9 * s, fw2: 8 * s, end: FW_END_PEER_FIN, orphanAtEntry: true, path: FW_PATH_CLOSE)
    leave.connection.endpoints.localPort &+= 1
    h.feed(close, leave)
    XCTAssertEqual(h.records.count, 1)
    XCTAssertNil(h.records[0].peer)
  }

  func testPeerClosesWithoutALeaveStayBounded() {
    var t = ConnectionTracker(stuckAfter: nil, tracingSince: 0, reconcilesOrphans: true)
    for i in 0..<10_000 as Range<UInt64> {
      var close = Fixture.event(FW_KIND_PEER_CLOSE, socket: 0x1000 + i * 64, ts: i)
      close.peer = Peer(netns: 5, closedAt: i)
      t.handle(close) { _ in XCTFail("a peer's close alone is no record") }
    }
    XCTAssertLessThanOrEqual(t.peerClosesAwaitingLeave, 4096)
  }

  func testExistingConnectionsAreTrackedToTheirEnd() {
    var h = TrackerHarness(reconcilesOrphans: true)
    let attached = Record(
      kind: .existing, timestamp: 100 * s,
      connection: Connection(socket: 0, owner: Owner(pid: 77, tid: 77, comm: "proxy", cgroupID: 0),
                             endpoints: endpoints, path: .unknown, syscall: .unknown, syscallNumber: -1,
                             orphanedAtEntry: false, netns: 0),
      orphaned: false, dwell: .atLeast(30 * s), end: nil)
    h.tracker.adopt(existing: [attached]) { _ in XCTFail("nothing to end yet") }
    // Its end comes from the tracepoint, without a start or owner.
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 110 * s, end: FW_END_PEER_FIN, owner: nil, path: FW_PATH_UNKNOWN))
    XCTAssertEqual(h.records.map(\.end), [.peerFin])
    XCTAssertEqual(h.records[0].connection.owner?.comm, "proxy")
    XCTAssertNil(h.records[0].peer, "no peer was seen for it")
    XCTAssertEqual(h.records[0].dwell, .atLeast(40 * s))

    var orphan = attached
    orphan.orphaned = true
    orphan.deadline = 130 * s
    var replaced: [Record] = []
    h.tracker.adopt(existing: [orphan]) { replaced.append($0) }
    XCTAssertTrue(replaced.isEmpty)
    h.observe(netns: 0, [], at: 130_250 * ms, finTimeout: 60 * s)
    h.observe(netns: 0, [], at: 130_500 * ms, finTimeout: 60 * s)
    XCTAssertEqual(h.records.last?.end, .timeout)
    XCTAssertEqual(h.records.last?.dwell, .atLeast(60 * s), "start known only as a lower bound")
  }

  func testATupleTakenOverByANewConnectionEndsTheOldOneAsUnknown() {
    var h = following()
    // tcp_tw_reuse: the same 4-tuple, handed to timewait again 2 s later.
    h.feed(Fixture.event(FW_KIND_LEAVE, socket: 99, ts: 12 * s, fw2: 12 * s - 10, end: FW_END_TIMEWAIT_ORPHAN,
                         orphanAtEntry: true, orphanAtEnd: true, path: FW_PATH_CLOSE))
    XCTAssertEqual(h.records.map(\.end), [.timewaitOrphan], "the first is reported, not dropped")
    XCTAssertEqual(h.records[0].dwell, .pending(observed: 5_000))
    XCTAssertEqual(h.tracker.orphans?.count, 1)
  }

  func testAPeerFinMeansTheLocalPeerClosedThen() {
    var h = TrackerHarness(reconcilesOrphans: true)
    var enter = Fixture.event(FW_KIND_ENTER, ts: 1 * s, fw2: 1 * s)
    enter.peer = Peer(netns: 5, closeWaitSince: 1 * s)  // its close record was not seen
    var leave = Fixture.event(FW_KIND_LEAVE, ts: 3 * s, fw2: 1 * s, end: FW_END_PEER_FIN)
    leave.peer = enter.peer
    h.feed(enter, leave)
    XCTAssertEqual(h.records[0].peer?.closedAt, 3 * s)
    XCTAssertEqual(h.records[0].peer?.closeWait(now: 99 * s), 2 * s)
  }

  func testAConnectionListedAtStartAndSeenByTheTracepointIsReportedOnce() {
    var h = TrackerHarness(reconcilesOrphans: true)
    let owner = Owner(pid: 77, tid: 77, comm: "proxy", cgroupID: 0)
    let listed = Record(
      kind: .existing, timestamp: 20 * s,
      connection: Connection(socket: 0, owner: owner, endpoints: endpoints, path: .unknown, syscall: .unknown,
                             syscallNumber: -1, orphanedAtEntry: false, netns: 0),
      orphaned: false, dwell: .atLeast(0), end: nil)
    var orphan = listed
    orphan.orphaned = true
    orphan.connection.netns = 9
    orphan.deadline = 80 * s
    h.tracker.adopt(existing: [listed, orphan]) { _ in XCTFail("nothing to end yet") }
    // The tracepoint reports both too: the attached one entering FIN_WAIT2 and
    // ending, the orphan handed over just before the listing.
    h.feed(
      Fixture.event(FW_KIND_ENTER, ts: 19 * s, fw2: 19 * s),
      Fixture.event(FW_KIND_LEAVE, ts: 21 * s, fw2: 19 * s, end: FW_END_PEER_FIN))
    var handoff = Fixture.event(FW_KIND_LEAVE, socket: 5, ts: 19 * s, fw2: 19 * s - 10, end: FW_END_TIMEWAIT_ORPHAN,
                                orphanAtEntry: true, orphanAtEnd: true, path: FW_PATH_CLOSE)
    handoff.connection.netns = 9
    h.feed(handoff)
    h.finish(30 * s)
    XCTAssertEqual(h.records.map(\.end), [.peerFin, .tracerExit], "each connection once")
    XCTAssertEqual(h.records[1].deadline, 80 * s, "the listing's deadline is kept")
    XCTAssertEqual(h.records[1].connection.path, .close, "the tracepoint's view wins")
  }

  func testAHandoffDuringTheStartListingIsTheListedConnection() {
    var h = TrackerHarness(reconcilesOrphans: true)
    // The dump began at 20 s and ended at 22 s; the connection was handed to
    // timewait at 21 s, so the dump listed it, and the tracepoint reports it too.
    let listed = Record(
      kind: .existing, timestamp: 20 * s,
      connection: Connection(socket: 0, owner: nil, endpoints: endpoints, path: .unknown, syscall: .unknown,
                             syscallNumber: -1, orphanedAtEntry: true, netns: 9),
      orphaned: true, dwell: .atLeast(0), end: nil, deadline: 81 * s)
    h.tracker.adopt(existing: [listed], listedBy: 22 * s) { _ in XCTFail("nothing to end yet") }
    var handoff = Fixture.event(FW_KIND_LEAVE, socket: 5, ts: 21 * s, fw2: 21 * s - 10, end: FW_END_TIMEWAIT_ORPHAN,
                                orphanAtEntry: true, orphanAtEnd: true, path: FW_PATH_CLOSE)
    handoff.connection.netns = 9
    h.feed(handoff)
    h.finish(30 * s)
    XCTAssertEqual(h.records.map(\.end), [.tracerExit], "one connection, reported once")
    XCTAssertEqual(h.records.first?.connection.path, .close, "with the tracepoint's owner and path")
  }
}

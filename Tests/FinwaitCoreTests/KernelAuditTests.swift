import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class KernelAuditTests: XCTestCase {
  private let s: UInt64 = 1_000_000_000
  private let endpoints = Endpoints(local: .v4(10, 0, 0, 1), localPort: 41234, remote: .v4(10, 0, 0, 2), remotePort: 8080)

  /// A map entry as the program left it: in FIN_WAIT1 since `fw1`, or in FIN_WAIT2 since `fw2`.
  private func entry(fw1: UInt64, fw2: UInt64? = nil, orphan: Bool = false) -> Event {
    var raw = Fixture.raw(kind: FW_KIND_IN_FLIGHT, ts: fw2 ?? 0, fw1: fw1, fw2: fw2, orphanAtEntry: orphan)
    if fw2 == nil { raw.ts_ns = 0 }
    return try! Event(decoding: raw)
  }

  private func diag(_ state: DiagSocket.State, inode: UInt32 = 99, lastAckMs: UInt32? = 1500, timer: UInt8 = 0) -> DiagSocket {
    DiagSocket(state: state, endpoints: endpoints, inode: inode, timer: timer, lastAckReceivedMilliseconds: lastAckMs)
  }

  func testAnUnseenFinWait2StartIsDatedNoLaterThanTheLastAck() {
    let found = KernelAudit.finding(for: entry(fw1: 1 * s), socket: diag(.finWait2), now: 10 * s)
    XCTAssertEqual(found, .finWait2Missed(by: 10 * s - 1_500_000_000, attached: true))
    let orphan = KernelAudit.finding(for: entry(fw1: 1 * s), socket: diag(.finWait2, inode: 0), now: 10 * s)
    XCTAssertEqual(orphan, .finWait2Missed(by: 10 * s - 1_500_000_000, attached: false))
  }

  func testTheStartIsNeverPutBeforeFinWait1() {
    let found = KernelAudit.finding(for: entry(fw1: 9 * s), socket: diag(.finWait2, lastAckMs: 5000), now: 12 * s)
    XCTAssertEqual(found, .finWait2Missed(by: 9 * s, attached: true))
  }

  func testWhatTheMapAndSockDiagAgreeOnIsFine() {
    XCTAssertNil(KernelAudit.finding(for: entry(fw1: 1 * s), socket: diag(.finWait1), now: 10 * s))
    XCTAssertNil(KernelAudit.finding(for: entry(fw1: 1 * s, fw2: 2 * s), socket: diag(.finWait2), now: 10 * s))
  }

  func testRecentEntriesAreLeftAlone() {
    XCTAssertNil(KernelAudit.finding(for: entry(fw1: 9 * s), socket: nil, now: 10 * s))
    XCTAssertNil(KernelAudit.finding(for: entry(fw1: 1 * s, fw2: 9 * s), socket: nil, now: 10 * s))
  }

  func testAGoneSocketOrATimewaitOneIsAMissedEnd() {
    XCTAssertEqual(KernelAudit.finding(for: entry(fw1: 1 * s), socket: nil, now: 10 * s), .endMissed)
    XCTAssertEqual(KernelAudit.finding(for: entry(fw1: 1 * s, fw2: 2 * s), socket: nil, now: 10 * s), .endMissed)
    let timewait = diag(.finWait2, inode: 0, lastAckMs: nil, timer: 3)
    XCTAssertEqual(KernelAudit.finding(for: entry(fw1: 1 * s, fw2: 2 * s, orphan: true), socket: timewait, now: 10 * s),
                   .endMissed, "its handoff to timewait was not seen")
  }

  func testDigestsTellConnectionsApartAndAgreeOverTime() {
    var other = endpoints
    other.localPort += 1
    XCTAssertEqual(endpoints.digest(in: 1), endpoints.digest(in: 1))
    XCTAssertNotEqual(endpoints.digest(in: 1), other.digest(in: 1))
    XCTAssertNotEqual(endpoints.digest(in: 1), endpoints.digest(in: 2))
    let v6 = Endpoints(local: .v6(high: 0, low: 1), localPort: 1, remote: .v6(high: 0, low: 2), remotePort: 2)
    let swapped = Endpoints(local: .v6(high: 0, low: 2), localPort: 1, remote: .v6(high: 0, low: 1), remotePort: 2)
    XCTAssertNotEqual(v6.digest(in: 1), swapped.digest(in: 1))
  }

  func testTheTrackerWatchesARecoveredAttachedStartAndItsLeaveIsALowerBound() {
    var h = TrackerHarness(stuckAfter: 5 * s)
    var repaired = entry(fw1: 1 * s, fw2: 3 * s)
    repaired.finWait2Inferred = true
    h.tracker.handle(.finWait2Missed(by: 3 * s, attached: true), of: repaired, at: 4 * s) { h.records.append($0) }
    XCTAssertEqual(h.tracker.counters.recoveredStarts, 1)
    XCTAssertEqual(h.tracker.attachedInFinWait2, 1)
    h.tick(9 * s)
    XCTAssertEqual(h.records.map(\.kind), [.stuck])
    var leave = try! Event(decoding: Fixture.raw(kind: FW_KIND_LEAVE, ts: 10 * s, fw1: 1 * s, fw2: 3 * s, end: FW_END_PEER_FIN))
    leave.finWait2Inferred = true
    h.feed(leave)
    XCTAssertEqual(h.records.last?.dwell, .atLeast(7 * s))
    XCTAssertEqual(h.tracker.attachedInFinWait2, 0)
  }

  func testAMissedEndIsReportedLostOnceAndAnUnseenOneOnlyCounted() {
    var h = TrackerHarness()
    let enter = Fixture.event(FW_KIND_ENTER, ts: 2 * s, fw2: 2 * s)
    h.feed(enter)
    h.tracker.handle(.endMissed, of: entry(fw1: 2 * s - 1, fw2: 2 * s), at: 10 * s) { h.records.append($0) }
    XCTAssertEqual(h.records.map(\.end), [.lost])
    XCTAssertEqual(h.records.first?.connection.owner?.comm, "nginx")
    XCTAssertEqual(h.tracker.attachedInFinWait2, 0)
    h.tracker.handle(.endMissed, of: entry(fw1: 1 * s), at: 10 * s) { h.records.append($0) }
    XCTAssertEqual(h.records.count, 1)
    XCTAssertEqual(h.tracker.counters.lostEnds, 1)
    XCTAssertEqual(h.tracker.counters.staleEntries, 1)
  }
}

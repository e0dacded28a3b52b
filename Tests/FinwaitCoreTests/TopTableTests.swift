import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class TopTableTests: XCTestCase {
  let s: UInt64 = 1_000_000_000

  func testRowsCountWhatIsInFinWait2NowAndWhatEndedInTheWindow() {
    var table = TopTable(grouping: .process)
    let nginx = Owner(pid: 10, tid: 10, comm: "nginx", cgroupID: 1)
    let label = table.label(owner: nginx, workload: nil)
    XCTAssertEqual(label, "10 nginx")
    table.addOpen(label: label, orphaned: false, dwell: 3 * s, peer: Peer(netns: 1, closeWaitSince: 5), peerName: "20/redis")
    table.addOpen(label: label, orphaned: false, dwell: 9 * s, peer: Peer(netns: 1, closeWaitSince: 5), peerName: "20/redis")
    table.addOpen(label: label, orphaned: true, dwell: 1 * s, peer: nil, peerName: nil)
    table.addEnded(label: label, Fixture.record(.exact(2 * s), end: .peerFin, path: FW_PATH_CLOSE))
    table.addEnded(label: label, Fixture.record(.exact(4 * s), end: .peerFin, path: FW_PATH_SHUTDOWN_WR))
    table.addEnded(label: label, Fixture.record(.exact(1), end: nil, kind: .stuck))  // not an end

    let row = table.sorted(by: .now)[0]
    XCTAssertEqual(row.attached, 2)
    XCTAssertEqual(row.orphaned, 1)
    XCTAssertEqual(row.oldest, 9 * s)
    XCTAssertEqual(row.peers, ["20/redis": 2])
    XCTAssertEqual(row.endedByPath, [.close: 1, .shutdownWrite: 1])
    XCTAssertEqual(Double(row.p99 ?? 0), Double(4 * s), accuracy: Double(4 * s) * 0.01)

    // The next refresh lists what is open again; the window keeps its ends.
    table.clearOpen()
    XCTAssertEqual(table.sorted(by: .now)[0].now, 0)
    XCTAssertEqual(table.sorted(by: .now)[0].ended, 2)
    // A new window drops ends, and rows with nothing open.
    table.newWindow()
    XCTAssertTrue(table.sorted(by: .now).isEmpty)
  }

  func testSortKeysAndTheirOrder() {
    var table = TopTable(grouping: .process)
    table.addOpen(label: "1 a", orphaned: false, dwell: 100 * s, peer: nil, peerName: nil)
    table.addOpen(label: "2 b", orphaned: false, dwell: 1 * s, peer: nil, peerName: nil)
    table.addOpen(label: "2 b", orphaned: false, dwell: 2 * s, peer: nil, peerName: nil)
    XCTAssertEqual(table.sorted(by: .now).map(\.label), ["2 b", "1 a"])
    XCTAssertEqual(table.sorted(by: .oldest).map(\.label), ["1 a", "2 b"])
    XCTAssertEqual(TopTable.SortKey.allCases.map(\.next), [.oldest, .p99, .ended, .now])
  }

  func testPodGroupingUsesThePodThenTheContainer() {
    let table = TopTable(grouping: .pod)
    let uid = "5d0c9a4e-7b1f-4c2d-8e3a-9f0b1c2d3e4f"
    let id = String(repeating: "ab", count: 32)
    XCTAssertEqual(table.label(owner: nil, workload: Workload(containerID: id, podUID: uid)), uid)
    XCTAssertEqual(table.label(owner: nil, workload: Workload(containerID: id)), "container abababababab")
    XCTAssertEqual(table.label(owner: nil, workload: nil), "(host)")
  }

  func testScreenFitsEightyByTwentyFour() {
    var table = TopTable(grouping: .process)
    for i in 0..<40 {
      table.addOpen(label: "\(1000 + i) a-process-with-a-long-name", orphaned: i % 2 == 0, dwell: UInt64(i) * s,
                    peer: Peer(netns: 1, closeWaitSince: 1), peerName: "\(2000 + i)/some-peer-process")
    }
    let header = TopScreen.Header(time: "12:00:00", windowSeconds: 60, losses: LossAccount(kernel: KernelCounters(ringbufDrops: 2)),
                                  finTimeoutSeconds: 60, sortKey: .oldest, interactive: true)
    let lines = TopScreen.lines(table.sorted(by: .oldest), header: header, grouping: .process, width: 80, height: 24)
    XCTAssertEqual(lines.count, 24)
    XCTAssertTrue(lines.allSatisfy { $0.count <= 80 }, "\(lines)")
    XCTAssertTrue(lines[0].hasPrefix("finwait top 12:00:00  in FIN_WAIT2: 40 (attached 20, orphaned 20)"), lines[0])
    XCTAssertTrue(lines[1].contains("sort: oldest  [s] sort  [q] quit"), lines[1])
    XCTAssertEqual(lines[2], "losses: ringbuf_drops 2", "the loss account's names, only those above 0")
    XCTAssertTrue(lines[4].hasPrefix("PID COMM"))
    XCTAssertTrue(lines[5].hasPrefix("1039 a-process-with"), lines[5])
    XCTAssertTrue(lines[5].contains("39.00s"), lines[5])

    let empty = TopScreen.lines([], header: header, grouping: .pod, width: 80, height: 24)
    XCTAssertEqual(empty.last, "(nothing in FIN_WAIT2 and nothing ended in the window)")
  }
}

import CFinwaitEvent
import XCTest
@testable import FinwaitCore

final class BreakdownTests: XCTestCase {
  private func kernelKey(path: fw_path, comm: String = "", pid: UInt32 = 0, cgroup: UInt64 = 0, port: UInt16 = 0) -> fw_hist_key {
    var k = fw_hist_key()
    k.path = UInt8(path.rawValue)
    k.tgid = pid
    k.cgroup_id = cgroup
    k.port = port
    withUnsafeMutableBytes(of: &k.comm) { $0.copyBytes(from: Array(comm.utf8)) }
    return k
  }

  func testKernelAndUserSpaceCountsOfTheSameKeyAreOneHistogram() {
    var intervals = IntervalHistograms(by: .comm, unitNanoseconds: 1_000)
    var slots = [UInt64](repeating: 0, count: Int(FW_HIST_SLOTS))
    slots[18] = 3  // 262144 -> 524287 us: attached connections counted in the kernel
    intervals.add(kernel: kernelKey(path: FW_PATH_CLOSE, comm: "nginx"), slots: slots)
    // An orphan of the same process followed to its end in user space: 300 ms.
    intervals.add(Fixture.record(.exact(300_000_000), end: .peerFin, path: FW_PATH_CLOSE))
    XCTAssertEqual(intervals.histograms.count, 1)
    let key = BreakdownKey(path: .close, comm: "nginx")
    XCTAssertEqual(intervals.histograms[key]?.buckets[18], 4)
    XCTAssertEqual(intervals.histograms[key]?.total, 4)
  }

  func testOnlyExactDwellsOfEndedConnectionsCount() {
    var intervals = IntervalHistograms(by: .path, unitNanoseconds: 1_000_000)
    intervals.add(Fixture.record(.atLeast(5_000_000_000), end: .tracerExit))
    intervals.add(Fixture.record(.pending(observed: 1), end: .timewaitOrphan))
    intervals.add(Fixture.record(.exact(2_000_000_000), end: nil, kind: .stuck))
    XCTAssertTrue(intervals.isEmpty)
    intervals.add(Fixture.record(.exact(2_500_000_000), end: .timeout))
    XCTAssertEqual(intervals.histograms[BreakdownKey(path: .close)]?.buckets[11], 1, "2500 ms")
  }

  func testEachBreakdownKeepsOnlyItsField() {
    let r = Fixture.record(.exact(1), end: .peerFin, path: FW_PATH_SHUTDOWN_WR)
    XCTAssertEqual(BreakdownKey(record: r, by: .pid), BreakdownKey(path: .shutdownWrite, pid: 4242))
    XCTAssertEqual(BreakdownKey(record: r, by: .port), BreakdownKey(path: .shutdownWrite, port: 41234))
    XCTAssertEqual(BreakdownKey(record: r, by: .cgroup), BreakdownKey(path: .shutdownWrite, cgroupID: 77))
    XCTAssertEqual(BreakdownKey(record: r, by: .path), BreakdownKey(path: .shutdownWrite))
    let k = kernelKey(path: FW_PATH_EXIT, comm: "x", pid: 9, cgroup: 8, port: 7)
    XCTAssertEqual(BreakdownKey(kernel: k, by: .pid), BreakdownKey(path: .exit, pid: 9))
    XCTAssertEqual(BreakdownKey(kernel: k, by: .comm), BreakdownKey(path: .exit, comm: "x"))
    XCTAssertEqual(Breakdown.allCases.map(\.raw), [0, 1, 2, 3, 4, 5])
  }

  func testRenderedLikeBccOneBlockPerKeyInOrder() {
    var intervals = IntervalHistograms(by: .port, unitNanoseconds: 1_000_000)
    var slots = [UInt64](repeating: 0, count: Int(FW_HIST_SLOTS))
    slots[3] = 2
    intervals.add(kernel: kernelKey(path: FW_PATH_CLOSE, port: 8080), slots: slots)
    intervals.add(kernel: kernelKey(path: FW_PATH_SHUTDOWN_WR, port: 443), slots: slots)
    let text = intervals.render()
    XCTAssertEqual(text.filter { $0.hasPrefix("path = ") }, ["path = shutdown_wr, port = 443", "path = close, port = 8080"])
    XCTAssertTrue(text.contains { $0.contains("msecs") })
    XCTAssertTrue(text.contains { $0.hasPrefix("         8 -> 15         : 2 ") }, "\(text)")
    let annotated = intervals.render { $0.port == 443 ? "tls" : nil }
    XCTAssertEqual(annotated.filter { $0.hasPrefix("path = ") }, ["path = shutdown_wr, port = 443, tls", "path = close, port = 8080"])
    intervals.reset()
    XCTAssertTrue(intervals.isEmpty)
  }
}

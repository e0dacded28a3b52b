import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// A process in a cgroup named the way containerd and the kubelet's systemd
/// driver name them: its connections carry the container id and pod UID.
final class ContainerAttributionTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  func testOwnerInAContainerCgroupIsNamedWithItsContainerAndPod() throws {
    let uid = "5d0c9a4e-7b1f-4c2d-8e3a-9f0b1c2d3e4f"
    let id = "c0ffee00" + String(repeating: "ab12", count: 14)
    let container = try makeCgroup(top: "finwait-test", pod: "kubepods-besteffort-pod", uid: uid,
                                   scope: "cri-containerd-\(id).scope")
    var st = stat()
    XCTAssertEqual(stat(container, &st), 0)
    let cgroupID = Int(st.st_ino)  // a cgroup v2 id is its directory's inode

    let port = Live.port(31)
    let finwait = try FinwaitProcess(["--json", "--port", String(port)])
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 300, cgroup: container)
    let truth = try driver.truth()
    try driver.finish()
    XCTAssertTrue(finwait.waitForRecord(5) { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort },
                  finwait.stdout.text)
    XCTAssertEqual(try finwait.stop(), 0, finwait.stderr.text)
    let record = try XCTUnwrap(try finwait.jsonRecords().first {
      $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort
    })
    XCTAssertEqual(record["pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(record["cgroup_id"] as? Int, cgroupID)
    XCTAssertEqual(record["container_id"] as? String, id)
    XCTAssertEqual(record["pod_uid"] as? String, uid)
    // The server side, the peer that held CLOSE_WAIT, is the same process.
    XCTAssertEqual(record["peer_pid"] as? Int, truth.ownerPid)
    XCTAssertEqual(record["peer_container_id"] as? String, id)
    XCTAssertEqual(record["peer_pod_uid"] as? String, uid)
  }

  func testHistByCgroupNamesTheContainerAndPod() throws {
    let uid = "6e1d0b5f-8c20-4d3e-9f4b-a01c2d3e4f50"
    let id = "deadbeef" + String(repeating: "cd34", count: 14)
    let container = try makeCgroup(top: "finwait-hist", pod: "kubepods-pod", uid: uid, scope: "crio-\(id).scope")
    var st = stat()
    XCTAssertEqual(stat(container, &st), 0)

    let port = Live.port(38)
    let hist = try FinwaitProcess(["hist", "-m", "-i", "1", "--by", "cgroup", "--port", String(port)])
    try DriverProcess("shutdown_wr", port: port, holdMs: 200, cgroup: container).finish()
    usleep(1_500_000)
    XCTAssertEqual(try hist.stop(), 0, hist.stderr.text)
    let label = "path = shutdown_wr, cgroup = \(st.st_ino), container \(id.prefix(12)), pod \(uid)"
    XCTAssertTrue(hist.stdout.lines.contains(label), hist.stdout.text)
  }

  func testHostProcessesCarryNoContainer() throws {
    let port = Live.port(32)
    let finwait = try FinwaitProcess(["--json", "--port", String(port)])
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 200)
    let truth = try driver.truth()
    try driver.finish()
    XCTAssertTrue(finwait.waitForRecord(5) { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort })
    XCTAssertEqual(try finwait.stop(), 0)
    let record = try XCTUnwrap(try finwait.jsonRecords().first { $0["sport"] as? Int == truth.clientPort })
    XCTAssertNotNil(record["cgroup_id"] as? Int)
    XCTAssertNil(record["container_id"])
    XCTAssertNil(record["pod_uid"])
    XCTAssertNotNil(record["peer_pid"] as? Int)
    XCTAssertNil(record["peer_container_id"])
    XCTAssertNil(record["peer_pod_uid"])
  }
}

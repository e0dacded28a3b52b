import XCTest
@testable import FinwaitCore

/// Cgroup paths as each runtime and kubelet cgroup driver writes them
/// (`cat /proc/PID/cgroup` on real nodes, ids and UIDs made up).
final class WorkloadTests: XCTestCase {
  let id = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
  let uid = "0f9b3c1a-2d4e-4f6a-9b8c-1d2e3f4a5b6c"
  var uidUnderscored: String { uid.split(separator: "-").joined(separator: "_") }

  func testContainerdWithTheSystemdDriver() {
    let path = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod\(uidUnderscored).slice/cri-containerd-\(id).scope"
    XCTAssertEqual(Workload(cgroupPath: path), Workload(containerID: id, podUID: uid))
  }

  func testGuaranteedPodsHaveNoQoSLevel() {
    let path = "/kubepods.slice/kubepods-pod\(uidUnderscored).slice/cri-containerd-\(id).scope"
    XCTAssertEqual(Workload(cgroupPath: path), Workload(containerID: id, podUID: uid))
  }

  func testCRIOWithTheSystemdDriver() {
    let path = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidUnderscored).slice/crio-\(id).scope"
    XCTAssertEqual(Workload(cgroupPath: path), Workload(containerID: id, podUID: uid))
  }

  func testCRIOsMonitorIsNotTheContainer() {
    let path = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod\(uidUnderscored).slice/crio-conmon-\(id).scope"
    XCTAssertEqual(Workload(cgroupPath: path), Workload(containerID: nil, podUID: uid))
  }

  func testCgroupfsDriver() {
    XCTAssertEqual(Workload(cgroupPath: "/kubepods/burstable/pod\(uid)/\(id)"), Workload(containerID: id, podUID: uid))
    XCTAssertEqual(Workload(cgroupPath: "/kubepods/pod\(uid)/\(id)"), Workload(containerID: id, podUID: uid))
  }

  func testDockerWithoutKubernetes() {
    XCTAssertEqual(Workload(cgroupPath: "/system.slice/docker-\(id).scope"), Workload(containerID: id))
    XCTAssertEqual(Workload(cgroupPath: "/docker/\(id)"), Workload(containerID: id))
    XCTAssertEqual(Workload(cgroupPath: "/system.slice/docker-\(id).scope")?.shortContainerID, String(id.prefix(12)))
  }

  func testSummaryNamesWhatIsKnown() {
    XCTAssertEqual(Workload(containerID: id, podUID: uid).summary, "container \(id.prefix(12)), pod \(uid)")
    XCTAssertEqual(Workload(podUID: uid).summary, "pod \(uid)")
  }

  func testAPodsOwnCgroupHasAPodAndNoContainer() {
    XCTAssertEqual(Workload(cgroupPath: "/kubepods.slice/kubepods-pod\(uidUnderscored).slice"), Workload(podUID: uid))
  }

  func testHostProcessesAndLookalikesAreNotWorkloads() {
    for path in ["/", "/user.slice/user-0.slice/session-3.scope", "/system.slice/nginx.service",
                 "/system.slice/docker.service", "/kubepods.slice/kubepods-burstable.slice",
                 "/docker/\(id.prefix(63))", "/docker/\(id.uppercased())", "/kubepods/podnot-a-uid",
                 "/kubepods/burstable/pod\(uid)x"] {
      XCTAssertNil(Workload(cgroupPath: path)?.containerID, path)
      if !path.contains(uid) { XCTAssertNil(Workload(cgroupPath: path), path) }
    }
  }
}

extension WorkloadTests {
  func testProcCgroupFilesOfUnifiedAndHybridHosts() {
    let unified = "0::/kubepods.slice/kubepods-pod\(uidUnderscored).slice/cri-containerd-\(id).scope\n"
    XCTAssertEqual(Workload(procCgroupFile: unified), Workload(containerID: id, podUID: uid))
    // Hybrid: v1 hierarchies carry the container, the v2 line is "/".
    let hybrid = "12:pids:/kubepods/burstable/pod\(uid)/\(id)\n4:memory:/kubepods/burstable/pod\(uid)/\(id)\n0::/\n"
    XCTAssertEqual(Workload(procCgroupFile: hybrid), Workload(containerID: id, podUID: uid))
    XCTAssertNil(Workload(procCgroupFile: "9:name=systemd:/\n4:memory:/user.slice\n0::/\n"))
    XCTAssertNil(Workload(procCgroupFile: "garbage"))
  }
}

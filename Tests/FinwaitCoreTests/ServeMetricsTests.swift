import FinwaitCore
import Foundation
import XCTest

/// The pure parts of `finwait serve`: formats, labels, budgets, buckets.
final class ServeMetricsTests: XCTestCase {
  // Prometheus 2.x sends this Accept header on every scrape.
  let prometheusAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

  func testOpenMetricsOnlyWhenTheScraperPrefersIt() {
    XCTAssertTrue(Exposition.prefersOpenMetrics(accept: prometheusAccept))
    XCTAssertTrue(Exposition.prefersOpenMetrics(accept: "application/openmetrics-text; version=1.0.0"))
    XCTAssertFalse(Exposition.prefersOpenMetrics(accept: nil))
    XCTAssertFalse(Exposition.prefersOpenMetrics(accept: "*/*"))
    XCTAssertFalse(Exposition.prefersOpenMetrics(accept: "text/plain;version=0.0.4"))
    XCTAssertFalse(Exposition.prefersOpenMetrics(accept: "text/plain, application/openmetrics-text;q=0.5"))
    XCTAssertFalse(Exposition.prefersOpenMetrics(accept: "application/openmetrics-text;q=0"))
  }

  func testOpenMetricsNamesCounterFamiliesWithoutTotalAndEnds() {
    let text = """
      # HELP finwait_ringbuf_drops_total Records lost.
      # TYPE finwait_ringbuf_drops_total counter
      finwait_ringbuf_drops_total 3
      # HELP finwait_fin_wait2_sockets Held.
      # TYPE finwait_fin_wait2_sockets gauge
      finwait_fin_wait2_sockets{state="attached"} 2.0

      """
    let om = String(decoding: Exposition.openMetrics(fromText: Array(text.utf8)), as: UTF8.self)
    XCTAssertEqual(om, """
      # HELP finwait_ringbuf_drops Records lost.
      # TYPE finwait_ringbuf_drops counter
      finwait_ringbuf_drops_total 3
      # HELP finwait_fin_wait2_sockets Held.
      # TYPE finwait_fin_wait2_sockets gauge
      finwait_fin_wait2_sockets{state="attached"} 2.0
      # EOF

      """)
  }

  func testLogfmtQuotesOnlyWhatNeedsIt() {
    XCTAssertEqual(
      Logfmt.line([("level", "warning"), ("msg", "FIN_WAIT2 stuck"), ("comm", "a\"b"), ("pod", ""), ("x", "a=b\n")]),
      #"level=warning msg="FIN_WAIT2 stuck" comm="a\"b" pod="" x="a=b\n""#)
  }

  func testKubeletLogDirectoriesNamePodsAndContainers() throws {
    let uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    let pod = try XCTUnwrap(PodLogs.podDirectory("kube-system_coredns-5d78c9869d-x2b4z_\(uid)"))
    XCTAssertEqual(pod.namespace, "kube-system")
    XCTAssertEqual(pod.pod, "coredns-5d78c9869d-x2b4z")
    XCTAssertEqual(pod.uid.text, uid)
    XCTAssertNil(PodLogs.podDirectory("kube-system_coredns"))
    XCTAssertNil(PodLogs.podDirectory("a_b_c_\(uid)"))
    XCTAssertNil(PodLogs.podDirectory("_b_\(uid)"))
    let id = String(repeating: "ab", count: 32)
    let log = try XCTUnwrap(PodLogs.containerLog("coredns-x_kube-system_coredns-sidecar-\(id).log"))
    XCTAssertEqual(log.pod, "coredns-x")
    XCTAssertEqual(log.namespace, "kube-system")
    XCTAssertEqual(log.container, "coredns-sidecar")
    XCTAssertEqual(log.id, id)
    XCTAssertNil(PodLogs.containerLog("coredns-x_kube-system_coredns-\(id)"))
    XCTAssertNil(PodLogs.containerLog("coredns-x_kube-system_coredns-123.log"))
  }

  func testOwnerLabelsOfPodsContainersAndHostProcesses() {
    let uid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
    let id = String(repeating: "c", count: 64)
    let workload = Workload(containerID: id, podUID: uid)
    let named = PodName(namespace: "shop", name: "cart-7d9", containers: [id: "app"])
    XCTAssertEqual(
      OwnerLabels(comm: "java", workload: workload, pod: named),
      OwnerLabels(namespace: "shop", pod: "cart-7d9", container: "app"))
    // Pod directory not found (yet): the UID and the short container id.
    XCTAssertEqual(
      OwnerLabels(comm: "java", workload: workload, pod: nil), OwnerLabels(pod: uid, container: "cccccccccccc"))
    // A pod with one container directory names it even without /var/log/containers.
    XCTAssertEqual(
      OwnerLabels(comm: "java", workload: workload, pod: PodName(namespace: "shop", name: "cart", soleContainer: "web")),
      OwnerLabels(namespace: "shop", pod: "cart", container: "web"))
    XCTAssertEqual(
      OwnerLabels(comm: "nginx", workload: Workload(containerID: id), pod: nil),
      OwnerLabels(container: "cccccccccccc", comm: "nginx"))
    XCTAssertEqual(OwnerLabels(comm: "sshd", workload: nil, pod: nil), OwnerLabels(comm: "sshd"))
  }

  func testCensusCountsByStateAndFoldsTheSmallestOwnersIntoOther() {
    let now: UInt64 = 1_000_000_000_000
    let s: UInt64 = 1_000_000_000
    let a = OwnerLabels(comm: "a"), b = OwnerLabels(comm: "b"), c = OwnerLabels(comm: "c")
    let held = [
      HeldSocket(state: .attached, since: now - 100 * s, owner: a, peerInCloseWait: true),
      HeldSocket(state: .attached, since: now - 5 * s, owner: a, peerInCloseWait: false),
      HeldSocket(state: .orphaned, since: now - 200 * s, owner: a, peerInCloseWait: false),
      HeldSocket(state: .attached, since: now - 90 * s, owner: b, peerInCloseWait: true),
      HeldSocket(state: .attached, since: now - 1 * s, owner: b, peerInCloseWait: false),
      HeldSocket(state: .attached, since: now - 70 * s, owner: c, peerInCloseWait: false),
    ]
    let census = Census(held, now: now, stuckAfter: 60 * s, maxOwners: 2)
    XCTAssertEqual(census.sockets[Census.Key(state: .attached, owner: a)], 2)
    XCTAssertEqual(census.sockets[Census.Key(state: .orphaned, owner: a)], 1)
    // Two owners at most: a keeps its labels, b (2 sockets) and c (1) are other.
    XCTAssertEqual(census.sockets[Census.Key(state: .attached, owner: .other)], 3)
    XCTAssertNil(census.sockets[Census.Key(state: .attached, owner: b)])
    XCTAssertEqual(census.stuck, [a: 1, .other: 2], "orphans are never stuck: their timer runs")
    XCTAssertEqual(census.oldestNanoseconds, 200 * s)
    XCTAssertEqual(census.closeWaitPeers, 2)
    XCTAssertEqual(Census([], now: now, stuckAfter: nil, maxOwners: 2), Census())
  }

  func testOwnerBudgetEvictsTheLeastRecentlyUsed() {
    var budget = OwnerBudget(limit: 2)
    let a = OwnerLabels(comm: "a"), b = OwnerLabels(comm: "b"), c = OwnerLabels(comm: "c")
    XCTAssertNil(budget.admit(a))
    XCTAssertNil(budget.admit(b))
    XCTAssertNil(budget.admit(a))
    XCTAssertEqual(budget.admit(c), b)
    XCTAssertEqual(budget.count, 2)
    XCTAssertEqual(budget.admit(b), a)
  }

  func testKernelSlotsBecomeObservationsAtTheirMeanWithTheExactSum() {
    // Slot 21 holds dwells of 2^21 to 2^22 us (2.1 s to 4.2 s).
    var slots = [UInt64](repeating: 0, count: 40)
    var sums = [UInt64](repeating: 0, count: 40)
    slots[21] = 3
    sums[21] = 3_000_000_000 + 2_500_000_000 + 4_000_000_000
    slots[0] = 1
    sums[0] = 800
    var seen: [(Double, UInt64)] = []
    DwellBuckets.observations(slots: slots, sums: sums) { seen.append(($0, $1)) }
    XCTAssertEqual(seen.count, 2)
    XCTAssertEqual(seen[0].0, 8e-7, accuracy: 1e-12)
    XCTAssertEqual(seen[1].1, 3)
    XCTAssertEqual(seen[1].0 * 3, 9.5, accuracy: 1e-9)
    // The mean lands in the bucket whose bounds enclose the slot.
    XCTAssertTrue(DwellBuckets.bounds.contains(4.194304))
    XCTAssertLessThan(seen[1].0, 4.194304)
    XCTAssertGreaterThan(seen[1].0, 2.097152)
    XCTAssertEqual(DwellBuckets.bounds.first, 0.001024)
    XCTAssertEqual(DwellBuckets.bounds.count, 25)
  }

  func testListenAddresses() {
    XCTAssertEqual(ListenAddress("127.0.0.1:9466"), ListenAddress(host: "127.0.0.1", port: 9466))
    XCTAssertEqual(ListenAddress(":9466"), ListenAddress(host: "127.0.0.1", port: 9466))
    XCTAssertEqual(ListenAddress("[::1]:9466")?.description, "[::1]:9466")
    XCTAssertEqual(ListenAddress("0.0.0.0:80")?.isLoopback, false)
    XCTAssertTrue(ListenAddress.default.isLoopback)
    for bad in ["localhost:9466", "127.0.0.1", "127.0.0.1:99999", "1.2.3:80", "::1:80", "[fe80::zz]:80", "1.2.3.4:"] {
      XCTAssertNil(ListenAddress(bad), bad)
    }
  }

  func testCapabilitiesKeptAfterAttachAndWarnedWithout() {
    let root: UInt64 = (1 << 41) - 1
    XCTAssertEqual(Capability.keepMask(effective: root), 1 << 2 | 1 << 19 | 1 << 21 | 1 << 39)
    XCTAssertEqual(Capability.keepMask(effective: Capability.bpf.bit | Capability.perfmon.bit), Capability.bpf.bit)
    XCTAssertEqual(Capability.missingOptional(effective: root), [])
    XCTAssertEqual(
      Capability.missingOptional(effective: Capability.bpf.bit | Capability.perfmon.bit),
      [.sysAdmin, .dacReadSearch, .sysPtrace])
    for capability in Capability.missingOptional(effective: 0) { XCTAssertNotNil(capability.withoutIt) }
  }

  func testMetricNamesFollowPrometheusConventions() {
    let all = [Metric.sockets, .duration, .total, .stuck, .oldest, .closeWaitPeers, .buildInfo]
      + LossAccount.Counter.allCases.map(Metric.loss)
    XCTAssertEqual(Set(all.map(\.name)).count, all.count)
    for metric in all {
      XCTAssertTrue(metric.name.hasPrefix("finwait_"), metric.name)
      XCTAssertEqual(metric.name.hasSuffix("_total"), metric.kind == .counter, metric.name)
      XCTAssertFalse(metric.help.isEmpty)
    }
    XCTAssertEqual(Metric.loss(.ringbufDrops).name, "finwait_ringbuf_drops_total")
  }

  func testTheServeDocumentationListsEveryMetric() throws {
    let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/serve.md")
    let text = try String(contentsOf: docs, encoding: .utf8)
    let all = [Metric.sockets, .duration, .total, .stuck, .oldest, .closeWaitPeers, .buildInfo]
      + LossAccount.Counter.allCases.map(Metric.loss)
    for metric in all { XCTAssertTrue(text.contains("`\(metric.name)`"), "docs/serve.md lacks \(metric.name)") }
  }
}

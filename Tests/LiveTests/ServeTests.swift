import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `finwait serve`, the real binary: scraped by a real Prometheus, its
/// endpoints, its log, its capabilities and its stop. Sockets are held in a
/// network namespace of the test's own and finwait is filtered to it
/// (`--netns`), so what other processes on the machine do (Prometheus's and
/// curl's own connections, other tests) cannot change the numbers compared.
final class ServeTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  // MARK: - Prometheus

  /// Prometheus scrapes finwait every second while three sockets are held in
  /// FIN_WAIT2: one attached to a host process (its local peer in
  /// CLOSE_WAIT), one orphaned, one attached to a process in a pod-shaped
  /// cgroup whose pod has a kubelet log directory. What Prometheus stored is
  /// compared with what is held, then with the dwells once released.
  func testPrometheusScrapesWhatIsHeld() throws {
    let base = Live.port(60)  // base ... base + 4: finwait, Prometheus, three drivers
    let namespace = try TestNamespace("serve-prom")
    let uid = "7f2e1c0a-3b4d-4e5f-8a9b-0c1d2e3f4a5b"
    let podName = "testpod-\(getpid())"
    let podLogs = try makePodLogs(namespace: "testns", pod: podName, uid: uid, containers: ["app"])
    let containerID = "f1a2b3c4" + String(repeating: "5e6f", count: 14)
    let cgroup = try makeCgroup(top: "finwait-serve", pod: "kubepods-besteffort-pod", uid: uid,
                                scope: "cri-containerd-\(containerID).scope")

    let finwait = try FinwaitProcess([
      "serve", "--listen", "127.0.0.1:\(base)", "--pod-logs", podLogs, "--stuck", "2s", "--netns", String(namespace.inode),
    ])
    let prometheus = try PrometheusServer(port: base + 1, job: "finwait", target: "127.0.0.1:\(base)")
    let job = "job=\"finwait\""

    // Held until released (SIGUSR1); 30 s bounds them if the test dies.
    let spawnedAt = monotonicSeconds()
    let drivers = [
      try DriverProcess("shutdown_wr", port: base + 2, holdMs: 30_000, in: namespace),
      try DriverProcess("close", port: base + 3, holdMs: 30_000, in: namespace),
      try DriverProcess("shutdown_wr", port: base + 4, holdMs: 30_000, in: namespace, cgroup: cgroup),
    ]
    let truths = try drivers.map { try $0.truth() }
    // Each driver sends its FIN right after its truth line: every dwell began
    // between spawnedAt and heldAt.
    let heldAt = monotonicSeconds()
    let heldAtWall = Date().timeIntervalSince1970
    let (attached, pod) = (truths[0], truths[2])

    // What every scrape must show once all three are held, by
    // state|namespace|pod|container|comm (Prometheus drops empty labels).
    let held: [String: Double] = [
      "attached||||": 0, "orphaned||||": 0,
      "attached||||fwdrive": 1, "orphaned||||fwdrive": 1,
      "attached|testns|\(podName)|app|": 1,
    ]
    func scrapesShowingHeld() -> Int {
      guard let series = try? prometheus.matrix("finwait_fin_wait2_sockets{\(job)}[60s]") else { return 0 }
      var scrapes: [Double: [String: Double]] = [:]
      for s in series {
        for sample in s.samples where sample.time > heldAtWall { scrapes[sample.time, default: [:]][ownerKey(s.labels)] = sample.value }
      }
      return scrapes.values.filter { $0 == held }.count
    }
    func stuckNow() -> Double? { try? prometheus.vector("sum(finwait_fin_wait2_stuck_sockets{\(job)})").first?.value }
    // Two scrapes that saw exactly what is held, and --stuck 2s passed.
    let seen = waitUntil(20) { scrapesShowingHeld() >= 2 && stuckNow() == 2 }
    print("serve: \(scrapesShowingHeld()) scrapes showed the held sockets \(monotonicSeconds() - heldAt) s after the FINs")
    XCTAssertTrue(seen, "Prometheus did not scrape the held sockets twice: scrapes \(scrapesShowingHeld()), "
                  + "stuck \(String(describing: stuckNow())); \(finwait.stderr.text) \(prometheus.log)")

    let byState = try prometheus.vector("sum by (state) (finwait_fin_wait2_sockets{\(job)})")
    XCTAssertEqual(values(byState, by: "state"), ["attached": 2, "orphaned": 1])
    let host = try prometheus.vector("finwait_fin_wait2_sockets{\(job),comm=\"fwdrive\"}")
    XCTAssertEqual(host.map { ownerKey($0.labels) }.sorted(), ["attached||||fwdrive", "orphaned||||fwdrive"])
    XCTAssertEqual(host.map(\.value), [1, 1])
    let pods = try prometheus.vector("finwait_fin_wait2_sockets{\(job),pod!=\"\"}")
    XCTAssertEqual(pods.count, 1, "\(pods)")
    XCTAssertEqual(pods.first?.labels["state"], "attached")
    XCTAssertEqual(pods.first?.labels["namespace"], "testns")
    XCTAssertEqual(pods.first?.labels["pod"], podName)
    XCTAssertEqual(pods.first?.labels["container"], "app")
    XCTAssertNil(pods.first?.labels["comm"], "a pod's socket is named by its pod, not its comm")
    XCTAssertEqual(pods.first?.value, 1)
    // Each held socket's peer is its driver's accepted socket, open until released.
    XCTAssertEqual(try prometheus.vector("finwait_close_wait_peer_sockets{\(job)}").map(\.value), [3])
    let stuck = try prometheus.vector("finwait_fin_wait2_stuck_sockets{\(job)}")
    XCTAssertEqual(stuck.map { ownerKey($0.labels, state: "") }.sorted(), ["|testns|\(podName)|app|", "||||fwdrive"])
    XCTAssertEqual(stuck.map(\.value), [1, 1])
    let oldest = try XCTUnwrap(try prometheus.vector("finwait_fin_wait2_oldest_seconds{\(job)}").first).value
    XCTAssertGreaterThanOrEqual(oldest, 2)
    XCTAssertLessThanOrEqual(oldest, monotonicSeconds() - spawnedAt)
    let build = try prometheus.vector("finwait_build_info{\(job)}")
    XCTAssertEqual(build.first?.labels["kernel"], kernelRelease())
    XCTAssertNotNil(build.first?.labels["version"])
    // Every kernel the tests run on has its own BTF: auto takes tp_btf.
    XCTAssertEqual(build.first?.labels["attach"], "tp_btf")

    // One log line per stuck socket, the pod's with its names (written just
    // after the gauges of the same refresh).
    func stuckLines() -> [[String: String]] {
      finwait.stderr.lines.compactMap(parseLogfmt).filter { $0["event"] == "stuck" }
    }
    waitUntil(5) { stuckLines().count >= 2 }
    let stuckLines = stuckLines()
    XCTAssertEqual(stuckLines.compactMap { $0["pid"] }.sorted(), ["\(attached.ownerPid)", "\(pod.ownerPid)"].sorted(),
                   finwait.stderr.text)
    let podLine = stuckLines.first { $0["pid"] == "\(pod.ownerPid)" }
    XCTAssertEqual(podLine?["namespace"], "testns")
    XCTAssertEqual(podLine?["pod"], podName)
    XCTAssertEqual(podLine?["container"], "app")

    try assertPromtoolAccepts(try http("http://127.0.0.1:\(base)/metrics"), "while held")

    // Released 6 s after the FINs, mid-bucket (4.194304, 8.388608]; if the
    // wait above took longer, at 12 s or 24 s, the middle of the next ones.
    // The expected bucket is computed from the times measured.
    let shutdownBuckets = "finwait_fin_wait2_duration_seconds_bucket{\(job),path=\"shutdown_wr\",end=\"peer_fin\"}"
    let closeBuckets = "finwait_fin_wait2_duration_seconds_bucket{\(job),path=\"close\"}"
    let shutdownBefore = try buckets(prometheus.vector(shutdownBuckets))
    let closeBefore = try buckets(prometheus.vector(closeBuckets))
    let hold = [6.0, 12, 24].first { heldAt + $0 > monotonicSeconds() + 0.2 } ?? 0
    while monotonicSeconds() < heldAt + hold { usleep(10_000) }  // the hold itself, not a synchronisation
    let releasedAt = monotonicSeconds()
    for truth in truths { kill(pid_t(truth.ownerPid), SIGUSR1) }
    for driver in drivers { try driver.finish() }
    let finishedAt = monotonicSeconds()
    // A dwell began after spawnedAt and by heldAt; it ended after releasedAt and
    // by finishedAt (the peer closes at once on SIGUSR1). 0.5 s of slack each way.
    let shortest = releasedAt - heldAt - 0.5
    let longest = finishedAt - spawnedAt + 0.5

    func count(_ promql: String) -> Double {
      (try? prometheus.vector("sum(\(promql))").first?.value) ?? 0
    }
    let settled = waitUntil(20) {
      count("finwait_fin_wait2_duration_seconds_count{\(job),path=\"shutdown_wr\",end=\"peer_fin\"}") == 2
        && count("finwait_fin_wait2_duration_seconds_count{\(job),path=\"close\"}") == 1
        && count("finwait_fin_wait2_sockets{\(job)}") == 0
        && (try? prometheus.vector("finwait_fin_wait2_sockets{\(job),comm=\"fwdrive\"}").isEmpty) == true
    }
    XCTAssertTrue(settled, "the ends did not reach Prometheus: " + ((try? prometheus.query(
      "{\(job),__name__=~\"finwait_fin_wait2_duration_seconds_count|finwait_fin_wait2_sockets\"}"))?.description ?? ""))

    // Buckets are 2^k microseconds, k = 10 ... 34, and +Inf.
    let shutdownAfter = try buckets(prometheus.vector(shutdownBuckets))
    let bounds = (10...34).map { Double(UInt64(1) << UInt64($0)) / 1e6 } + [Double.infinity]
    XCTAssertEqual(shutdownAfter.keys.sorted(), bounds)
    let (below, atOrAbove) = enclosingBounds(shortest, longest, in: bounds)
    print("serve: dwells \(shortest + 0.5)...\(longest - 0.5) s, expected in (\(below), \(atOrAbove)]")
    let bucket = try XCTUnwrap(bounds.firstIndex(of: below))
    XCTAssertEqual(bounds[bucket + 1], atOrAbove, "dwells \(shortest)...\(longest) s span more than one bucket")
    if hold == 6 { XCTAssertEqual([below, atOrAbove], [4.194304, 8.388608]) }
    // Both shutdown_wr sockets (host and pod) in (below, atOrAbove]; the orphan too.
    XCTAssertEqual(shutdownAfter[below], shutdownBefore[below] ?? 0, "dwells \(shortest)...\(longest) s: \(shutdownAfter)")
    XCTAssertEqual(shutdownAfter[atOrAbove], (shutdownBefore[atOrAbove] ?? 0) + 2, "\(shutdownAfter)")
    let closeAfter = try prometheus.vector(closeBuckets)
    XCTAssertEqual(Set(closeAfter.compactMap { $0.labels["end"] }), ["peer_fin"], "the orphan ended by its peer's FIN")
    let closeCounts = buckets(closeAfter)
    XCTAssertEqual(closeCounts[below], closeBefore[below] ?? 0, "orphan, dwell \(shortest)...\(longest) s: \(closeCounts)")
    XCTAssertEqual(closeCounts[atOrAbove], (closeBefore[atOrAbove] ?? 0) + 1, "\(closeCounts)")
    let sum = count("finwait_fin_wait2_duration_seconds_sum{\(job),path=\"shutdown_wr\",end=\"peer_fin\"}")
    XCTAssertTrue((2 * shortest...2 * longest).contains(sum), "sum \(sum) for two dwells of \(shortest)...\(longest) s")

    let totals = try prometheus.vector("finwait_fin_wait2_total{\(job)}")
    XCTAssertEqual(Dictionary(totals.map { ("\($0.labels["path"] ?? "")/" + ownerKey($0.labels, state: ""), $0.value) },
                              uniquingKeysWith: +),
                   ["shutdown_wr/||||fwdrive": 1, "close/||||fwdrive": 1, "shutdown_wr/|testns|\(podName)|app|": 1])
    XCTAssertEqual(try prometheus.vector("finwait_fin_wait2_stuck_sockets{\(job)}").count, 0, "stuck series remain")
    XCTAssertEqual(try prometheus.vector("finwait_close_wait_peer_sockets{\(job)}").map(\.value), [0])
    XCTAssertEqual(try prometheus.vector("finwait_fin_wait2_oldest_seconds{\(job)}").map(\.value), [0])
    let losses = try prometheus.vector(
      "{\(job),__name__=~\"finwait_(ringbuf_drops|map_full|lost_ends|unseen_start|undecodable|hist_full)_total\"}")
    XCTAssertEqual(losses.count, 6)
    XCTAssertEqual(losses.filter { $0.value != 0 }.map { $0.labels["__name__"] ?? "" }, [])
    // Every scrape (Prometheus asks for OpenMetrics first) was parsed.
    XCTAssertEqual(try prometheus.vector("min_over_time(up{\(job)}[5m])").map(\.value), [1])

    try assertPromtoolAccepts(try http("http://127.0.0.1:\(base)/metrics"), "after the ends")
    XCTAssertEqual(try finwait.stop(SIGTERM), 0, finwait.stderr.text)
    prometheus.stop()
  }

  // MARK: - Capabilities

  /// As root: once attached only CAP_BPF (map reads), CAP_SYS_ADMIN (setns),
  /// CAP_SYS_PTRACE (/proc/PID/fd of others) and CAP_DAC_READ_SEARCH
  /// (cgroup ids to paths) are left, and it still reads the kernel's map.
  /// As nobody with CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE: it starts, with
  /// one warning per optional capability it lacks.
  func testCapabilitiesAreDroppedOnceAttached() throws {
    let kept = capabilityMask([2, 19, 21, 39])  // DAC_READ_SEARCH, SYS_PTRACE, SYS_ADMIN, BPF (linux/capability.h)
    XCTAssertEqual(kept, 0x80_0028_0004)
    let port = Live.port(62)
    let namespace = try TestNamespace("serve-caps")
    let root = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "off",
                                   "--netns", String(namespace.inode)])
    let caps = try capabilities(of: root.process.processIdentifier)
    XCTAssertEqual(caps["CapEff"], kept, hex(caps))
    XCTAssertEqual(caps["CapPrm"], kept, hex(caps))
    XCTAssertEqual(caps["CapAmb"], 0, hex(caps))
    XCTAssertEqual((caps["CapInh"] ?? 0) & ~kept, 0, hex(caps))
    XCTAssertFalse(root.stderr.text.contains("warning"), root.stderr.text)
    // With what is left it still reads the kernel's map: a held socket is counted.
    let driver = try DriverProcess("shutdown_wr", port: port + 1, holdMs: 10_000, in: namespace)
    let truth = try driver.truth()
    let counted = waitUntil(10) {
      let body = (try? http("http://127.0.0.1:\(port)/metrics").body) ?? ""
      return body.contains("finwait_fin_wait2_sockets{state=\"attached\",namespace=\"\",pod=\"\",container=\"\",comm=\"fwdrive\"} 1")
    }
    XCTAssertTrue(counted, (try? http("http://127.0.0.1:\(port)/metrics").body) ?? "")
    kill(pid_t(truth.ownerPid), SIGUSR1)
    try driver.finish()
    XCTAssertEqual(try root.stop(SIGTERM), 0, root.stderr.text)

    // Unprivileged, with the capabilities a hardened unit might give it.
    let given = ["bpf", "perfmon", "sys_ptrace"].map { "+" + $0 }.joined(separator: ",")
    let nobody = try FinwaitProcess(
      ["serve", "--listen", "127.0.0.1:\(port + 2)", "--stuck", "off"],
      wrapper: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all,\(given)",
                "--ambient-caps=-all,\(given)", "--bounding-set=-all,\(given)"])
    // Written before the attach; the collector thread may not have read them yet.
    // Warnings are logfmt like every line serve writes.
    func warnings() -> [String] {
      nobody.stderr.lines.compactMap(parseLogfmt).filter { $0["level"] == "warning" }.compactMap { $0["msg"] }
    }
    waitUntil(5) { warnings().count >= 2 }
    XCTAssertEqual(warnings().count, 2, nobody.stderr.text)
    XCTAssertEqual(warnings().filter { $0.hasPrefix("without CAP_SYS_ADMIN,") }.count, 1, nobody.stderr.text)
    XCTAssertEqual(warnings().filter { $0.hasPrefix("without CAP_DAC_READ_SEARCH,") }.count, 1, nobody.stderr.text)
    let nobodyCaps = try capabilities(of: nobody.process.processIdentifier)
    XCTAssertEqual(nobodyCaps["CapEff"], capabilityMask([19, 39]), hex(nobodyCaps))  // CAP_PERFMON not kept
    XCTAssertEqual(nobodyCaps["CapPrm"], capabilityMask([19, 39]), hex(nobodyCaps))
    XCTAssertEqual(nobodyCaps["CapAmb"], 0, hex(nobodyCaps))
    XCTAssertEqual(try http("http://127.0.0.1:\(port + 2)/readyz").status, 200)
    XCTAssertFalse(nobody.stderr.text.contains("could not drop capabilities"), nobody.stderr.text)
    XCTAssertEqual(try nobody.stop(SIGTERM), 0, nobody.stderr.text)
  }

  // MARK: - Stop

  /// SIGTERM to a ready serve holding an attached and an orphaned socket:
  /// status 0 within a second, its program and link gone.
  func testSigtermDetachesAndExitsWithinASecond() throws {
    let namespace = try TestNamespace("serve-term")
    // SIGINT (a terminal's ^C) the same way.
    for (n, signal) in [SIGTERM, SIGINT].enumerated() {
      let port = Live.port(63) + 3 * n  // listen, then two drivers
      let name = signal == SIGTERM ? "SIGTERM" : "SIGINT"
      let finwait = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "1s",
                                        "--netns", String(namespace.inode)])
      XCTAssertEqual(try http("http://127.0.0.1:\(port)/readyz").status, 200)
      // Something to settle at the stop: an attached socket and an orphan followed.
      let drivers = [try DriverProcess("shutdown_wr", port: port + 1, holdMs: 10_000, in: namespace),
                     try DriverProcess("close", port: port + 2, holdMs: 10_000, in: namespace)]
      let truths = try drivers.map { try $0.truth() }
      let heldSeen = waitUntil(10) {
        let body = (try? http("http://127.0.0.1:\(port)/metrics").body) ?? ""
        return body.contains("{state=\"attached\",namespace=\"\",pod=\"\",container=\"\",comm=\"fwdrive\"} 1")
          && body.contains("{state=\"orphaned\",namespace=\"\",pod=\"\",container=\"\",comm=\"fwdrive\"} 1")
      }
      XCTAssertTrue(heldSeen, finwait.stderr.text)
      let pid = finwait.process.processIdentifier
      let attachedTo = bpfObjects(of: pid)
      XCTAssertFalse(attachedTo.programs.isEmpty || attachedTo.links.isEmpty, "no BPF program or link in /proc/\(pid)/fd")

      let signalledAt = monotonicSeconds()
      kill(pid, signal)
      while finwait.process.isRunning && monotonicSeconds() < signalledAt + 5 { usleep(2_000) }
      let exitedAt = monotonicSeconds()
      XCTAssertFalse(finwait.process.isRunning, "finwait still running 5 s after \(name)")
      XCTAssertLessThanOrEqual(exitedAt - signalledAt, 1.0, "\(name): exit took \(exitedAt - signalledAt) s")
      print("finwait serve exited \(Int((exitedAt - signalledAt) * 1000)) ms after \(name)")
      XCTAssertEqual(try finwait.waitForExit(), 0, "\(name): \(finwait.stderr.text)")
      XCTAssertEqual(finwait.process.terminationReason, .exit, name)
      XCTAssertEqual(finwait.stderr.lines.last.flatMap(parseLogfmt)?["msg"], "detached", finwait.stderr.text)
      // The kernel frees them after a grace period: poll, bounded.
      let gone = waitUntil(5) {
        attachedTo.programs.allSatisfy { !bpftoolShows("prog", $0) } && attachedTo.links.allSatisfy { !bpftoolShows("link", $0) }
      }
      XCTAssertTrue(gone, "\(name): still loaded after exit: programs \(attachedTo.programs), links \(attachedTo.links)")
      for truth in truths { kill(pid_t(truth.ownerPid), SIGUSR1) }
      for driver in drivers { try driver.finish() }
    }
  }

  /// Sockets already in FIN_WAIT2 when serve starts are in the gauge from
  /// the first scrape after ready (attached: owner found through /proc;
  /// orphan: no owner), and leave it when they end.
  func testSocketsHeldBeforeStartAreCountedAtReady() throws {
    let port = Live.port(66)
    let namespace = try TestNamespace("serve-existing")
    let attached = try DriverProcess("shutdown_wr", port: port + 1, holdMs: 20_000, in: namespace)
    let orphan = try DriverProcess("close", port: port + 2, holdMs: 20_000, in: namespace)
    let truths = [try attached.truth(), try orphan.truth()]
    XCTAssertTrue(waitForFinWait2(truths.map(\.clientPort), in: namespace, 10),
                  "the two sockets did not reach FIN_WAIT2 before serve started")

    let finwait = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "off",
                                      "--netns", String(namespace.inode)])
    let first = try http("http://127.0.0.1:\(port)/metrics").body
    let series = "finwait_fin_wait2_sockets{state="
    XCTAssertTrue(first.contains(series + #""attached",namespace="",pod="",container="",comm="fwdrive"} 1.0"#), first)
    XCTAssertTrue(first.contains(series + #""orphaned",namespace="",pod="",container="",comm=""} 1.0"#), first)

    for truth in truths { kill(pid_t(truth.ownerPid), SIGUSR1) }
    try attached.finish()
    try orphan.finish()
    let ended = waitUntil(10) {
      let body = (try? http("http://127.0.0.1:\(port)/metrics").body) ?? ""
      return !body.contains(#"comm="fwdrive"} 1.0"#) && !body.contains(#"container="",comm=""} 1.0"#)
    }
    XCTAssertTrue(ended, (try? http("http://127.0.0.1:\(port)/metrics").body) ?? "")
    XCTAssertEqual(try finwait.stop(SIGTERM), 0, finwait.stderr.text)
  }

  // MARK: - Endpoints

  func testHealthAndReadinessEndpoints() throws {
    let port = Live.port(64)
    let finwait = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "off"])
    let url = "http://127.0.0.1:\(port)"
    let health = try http(url + "/healthz")
    XCTAssertEqual(health.status, 200)
    XCTAssertEqual(health.body, "ok\n")
    let ready = try http(url + "/readyz")
    XCTAssertEqual(ready.status, 200, "ready-fd said ready, /readyz must agree")
    XCTAssertEqual(ready.body, "ready\n")
    XCTAssertEqual(try http(url + "/nope").status, 404)
    XCTAssertEqual(try http(url + "/metrics/extra").status, 404)
    XCTAssertEqual(try http(url + "/metrics?debug=1").status, 200, "a query string does not change the path")
    for path in ["/metrics", "/healthz", "/readyz"] {
      XCTAssertEqual(try http(url + path, method: "POST", data: "x=1").status, 405, path)
    }
    XCTAssertEqual(try http(url + "/metrics", method: "PUT", data: "x").status, 405)
    XCTAssertEqual(try http(url + "/metrics", method: "DELETE").status, 405)
    // Still serving after refused requests.
    XCTAssertEqual(try http(url + "/healthz").status, 200)
    XCTAssertEqual(try finwait.stop(SIGTERM), 0, finwait.stderr.text)
  }

  func testOpenMetricsWhenAsked() throws {
    let port = Live.port(65)
    let finwait = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "off"])
    let url = "http://127.0.0.1:\(port)/metrics"
    // Asked for explicitly, and as Prometheus 2.42 asks.
    for accept in ["application/openmetrics-text; version=1.0.0",
                   "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"] {
      let om = try http(url, headers: ["Accept: \(accept)"])
      XCTAssertEqual(om.status, 200)
      XCTAssertTrue(om.contentType.hasPrefix("application/openmetrics-text"), om.contentType)
      XCTAssertTrue(om.body.hasSuffix("\n# EOF\n"), String(om.body.suffix(80)))
      XCTAssertEqual(om.body.components(separatedBy: "# EOF").count, 2, "one # EOF")
      let lines = om.body.split(separator: "\n").map(String.init)
      XCTAssertTrue(lines.contains("# TYPE finwait_ringbuf_drops counter"), om.body)
      XCTAssertTrue(lines.contains("finwait_ringbuf_drops_total 0"), om.body)
      let counterFamilies = lines.filter { $0.hasPrefix("# TYPE ") && $0.hasSuffix(" counter") }
      XCTAssertFalse(counterFamilies.isEmpty)
      XCTAssertEqual(counterFamilies.filter { $0.contains("_total ") }, [], "OpenMetrics counter families end without _total")
      XCTAssertEqual(lines.filter { $0.hasPrefix("# HELP ") && $0.split(separator: " ")[2].hasSuffix("_total") }, [])
    }
    // Otherwise the text format.
    for headers in [[], ["Accept: text/plain"], ["Accept: text/plain;version=0.0.4, application/openmetrics-text;q=0.5"]] {
      let text = try http(url, headers: headers)
      XCTAssertEqual(text.status, 200)
      XCTAssertTrue(text.contentType.hasPrefix("text/plain; version=0.0.4"), "\(headers): \(text.contentType)")
      XCTAssertFalse(text.body.contains("# EOF"), "\(headers)")
      XCTAssertTrue(text.body.contains("\n# TYPE finwait_ringbuf_drops_total counter\n"), "\(headers)")
      XCTAssertTrue(text.body.contains("\n# TYPE finwait_fin_wait2_sockets gauge\n"), "\(headers)")
    }
    XCTAssertEqual(try finwait.stop(SIGTERM), 0, finwait.stderr.text)
  }

  // MARK: - Log

  /// --stuck 1s and a socket held 3 s: one logfmt line, however many
  /// refreshes see it stuck.
  func testStuckSocketLogsOneLogfmtLine() throws {
    let port = Live.port(61)
    let namespace = try TestNamespace("serve-stuck")
    let finwait = try FinwaitProcess(["serve", "--listen", "127.0.0.1:\(port)", "--stuck", "1s",
                                      "--netns", String(namespace.inode)])
    let spawnedAt = monotonicSeconds()
    let driver = try DriverProcess("shutdown_wr", port: port + 1, holdMs: 15_000, in: namespace)
    let truth = try driver.truth()
    let heldAt = monotonicSeconds()
    func stuckLines() -> [[String: String]] {
      finwait.stderr.lines.compactMap(parseLogfmt).filter { $0["msg"]?.hasPrefix("FIN_WAIT2 stuck") == true }
    }
    XCTAssertTrue(waitUntil(10) { !stuckLines().isEmpty }, finwait.stderr.text)
    let loggedAt = monotonicSeconds()
    while monotonicSeconds() < heldAt + 3 { usleep(10_000) }  // the hold itself: refreshes see it stuck again
    kill(pid_t(truth.ownerPid), SIGUSR1)
    try driver.finish()
    XCTAssertEqual(try finwait.stop(SIGTERM), 0, finwait.stderr.text)

    let lines = finwait.stderr.lines
    for line in lines {
      let fields = parseLogfmt(line)
      XCTAssertNotNil(fields, "not logfmt: \(line)")
      XCTAssertNotNil(fields?["ts"], line)
      XCTAssertNotNil(fields?["level"], line)
      XCTAssertNotNil(fields?["msg"], line)
    }
    let ours = stuckLines().filter { $0["pid"] == "\(truth.ownerPid)" }
    XCTAssertEqual(ours.count, 1, finwait.stderr.text)
    XCTAssertEqual(stuckLines().count, 1, "only our socket is in the namespace: \(finwait.stderr.text)")
    let line = try XCTUnwrap(ours.first)
    XCTAssertEqual(line["level"], "warning")
    XCTAssertEqual(line["comm"], "fwdrive")
    XCTAssertEqual(line["path"], "shutdown_wr")
    XCTAssertEqual(line["state"], "attached")
    XCTAssertEqual(line["local"], "127.0.0.1:\(truth.clientPort)")
    XCTAssertEqual(line["remote"], "127.0.0.1:\(port + 1)")
    XCTAssertEqual(line["peer_close_wait"], "true")
    XCTAssertNil(line["pod"], "a host process has no pod")
    let dwell = try XCTUnwrap(line["dwell_seconds"].flatMap(Double.init), "\(line)")
    XCTAssertGreaterThanOrEqual(dwell, 1)
    XCTAssertLessThanOrEqual(dwell, loggedAt - spawnedAt)
    XCTAssertNotNil(line["ts"].flatMap { ISO8601DateFormatter.withFractionalSeconds.date(from: $0) }, "\(line)")
  }

  // MARK: - Helpers

  /// `<dir>/<namespace>_<pod>_<uid>/<container>/`, as the kubelet writes it.
  private func makePodLogs(namespace: String, pod: String, uid: String, containers: [String]) throws -> String {
    let dir = NSTemporaryDirectory() + "finwait-pods-\(getpid())"
    for container in containers {
      try FileManager.default.createDirectory(atPath: "\(dir)/\(namespace)_\(pod)_\(uid)/\(container)",
                                              withIntermediateDirectories: true)
    }
    addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
    return dir
  }

  private func assertPromtoolAccepts(_ reply: HTTPReply, _ when: String, file: StaticString = #filePath,
                                     line: UInt = #line) throws {
    XCTAssertEqual(reply.status, 200, file: file, line: line)
    let check = try PrometheusServer.checkMetrics(reply.body)
    XCTAssertEqual(check.status, 0, "promtool check metrics (\(when)): \(check.stdout) \(check.stderr)\n\(reply.body)",
                   file: file, line: line)
  }
}

/// state|namespace|pod|container|comm of a series (absent labels are empty).
private func ownerKey(_ labels: [String: String], state: String? = nil) -> String {
  ([state ?? labels["state"] ?? ""] + ["namespace", "pod", "container", "comm"].map { labels[$0] ?? "" })
    .joined(separator: "|")
}

private func values(_ samples: [PrometheusServer.Sample], by label: String) -> [String: Double] {
  Dictionary(samples.map { ($0.labels[label] ?? "", $0.value) }, uniquingKeysWith: +)
}

/// A histogram's cumulative counts by upper bound (le), summed over series.
private func buckets(_ samples: [PrometheusServer.Sample]) -> [Double: Double] {
  var counts: [Double: Double] = [:]
  for sample in samples {
    guard let text = sample.labels["le"], let le = text == "+Inf" ? Double.infinity : Double(text) else { continue }
    counts[le, default: 0] += sample.value
  }
  return counts
}

/// The bounds a dwell known to lie in shortest...longest falls between: the
/// largest below it and the smallest at or above it.
private func enclosingBounds(_ shortest: Double, _ longest: Double, in bounds: [Double]) -> (Double, Double) {
  (bounds.last { $0 < shortest } ?? 0, bounds.first { $0 >= longest } ?? .infinity)
}

private func kernelRelease() -> String {
  ((try? String(contentsOfFile: "/proc/sys/kernel/osrelease", encoding: .utf8)) ?? "")
    .trimmingCharacters(in: .whitespacesAndNewlines)
}

private func capabilityMask(_ bits: [Int]) -> UInt64 {
  bits.reduce(0) { $0 | (UInt64(1) << UInt64($1)) }
}

/// CapInh, CapPrm, CapEff, CapBnd and CapAmb of /proc/PID/status.
private func capabilities(of pid: pid_t) throws -> [String: UInt64] {
  let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
  var caps: [String: UInt64] = [:]
  for line in status.split(separator: "\n") where line.hasPrefix("Cap") {
    let parts = line.split(separator: ":", maxSplits: 1)
    if parts.count == 2, let value = UInt64(parts[1].trimmingCharacters(in: .whitespaces), radix: 16) {
      caps[String(parts[0])] = value
    }
  }
  guard caps.count == 5 else { throw LiveError("no capabilities in /proc/\(pid)/status: \(status)") }
  return caps
}

private func hex(_ caps: [String: UInt64]) -> String {
  caps.keys.sorted().map { "\($0)=\(String(caps[$0]!, radix: 16))" }.joined(separator: " ")
}

/// The BPF program and link ids a process holds open (/proc/PID/fdinfo).
private func bpfObjects(of pid: pid_t) -> (programs: Set<Int>, links: Set<Int>) {
  var programs = Set<Int>()
  var links = Set<Int>()
  let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
  for fd in fds {
    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"),
      target == "anon_inode:bpf-prog" || target == "anon_inode:bpf_link",
      let info = try? String(contentsOfFile: "/proc/\(pid)/fdinfo/\(fd)", encoding: .utf8)
    else { continue }
    for line in info.split(separator: "\n") {
      let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
      guard parts.count == 2, let id = Int(parts[1]) else { continue }
      if parts[0] == "prog_id" { programs.insert(id) }
      if parts[0] == "link_id" { links.insert(id) }
    }
  }
  return (programs, links)
}

/// Whether `bpftool KIND show id ID` finds it.
private func bpftoolShows(_ kind: String, _ id: Int) -> Bool {
  (try? runToEnd(["/usr/sbin/bpftool", kind, "show", "id", String(id)]).status) == 0
}

/// One logfmt line: `key=value key="quoted \"value\""`; nil if it is not one.
private func parseLogfmt(_ line: String) -> [String: String]? {
  var fields: [String: String] = [:]
  var rest = Substring(line)
  while true {
    rest = rest.drop { $0 == " " }
    if rest.isEmpty { break }
    guard let equals = rest.firstIndex(of: "=") else { return nil }
    let key = String(rest[..<equals])
    guard !key.isEmpty, !key.contains(" "), !key.contains("\"") else { return nil }
    rest = rest[rest.index(after: equals)...]
    var value = ""
    if rest.first == "\"" {
      rest = rest.dropFirst()
      var closed = false
      while let c = rest.first {
        rest = rest.dropFirst()
        if c == "\"" {
          closed = true
          break
        }
        if c == "\\" {
          guard let escaped = rest.first else { return nil }
          rest = rest.dropFirst()
          switch escaped {
          case "n": value.append("\n")
          case "t": value.append("\t")
          case "r": value.append("\r")
          default: value.append(escaped)
          }
        } else {
          value.append(c)
        }
      }
      guard closed, rest.isEmpty || rest.first == " " else { return nil }
    } else {
      let end = rest.firstIndex(of: " ") ?? rest.endIndex
      value = String(rest[..<end])
      guard !value.contains("\""), !value.contains("=") else { return nil }
      rest = rest[end...]
    }
    guard fields[key] == nil else { return nil }
    fields[key] = value
  }
  return fields.isEmpty ? nil : fields
}

extension ISO8601DateFormatter {
  fileprivate static var withFractionalSeconds: ISO8601DateFormatter {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter
  }
}

import CFinwaitEvent
import FinwaitCore
import FinwaitTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest
@testable import FinwaitTracing

/// `finwait serve` on scripted kernel state, and its HTTP handler on NIO's
/// EmbeddedChannel: no root, no network.
final class ServeModeTests: XCTestCase {
  let start: UInt64 = 1_000 * s  // ManualClock's first reading

  func serve(_ run: LoopRun, stuckAfter: UInt64? = 1 * s, maxOwners: Int = 100) -> (ServeMode, CapturedLines) {
    var options = ServeMode.Options()
    options.stuckAfter = stuckAfter
    options.maxOwners = maxOwners
    options.podLogs = "/nonexistent"
    let log = CapturedLines()
    let clock = run.clock
    nonisolated(unsafe) let now = { clock.now }
    let logger = ServeMode.logger(to: log, clock: { now() }, wallClock: WallClock(offset: 0))
    return (ServeMode(options: options, metrics: ServeMetrics(), logger: logger, clock: { now() }), log)
  }

  /// In FIN_WAIT2 since `fw2` in the kernel map (serve's kernel sends no ENTER).
  func held(_ socket: UInt64, since fw2: UInt64, comm: String, orphaned: Bool = false, peerWaits: Bool = false)
    -> fw_event
  {
    var e = KernelRecords.raw(
      kind: FW_KIND_ENTER, socket: socket, ts: fw2, fw1: fw2 - ms, fw2: fw2, owner: (4242, comm),
      sport: UInt16(truncatingIfNeeded: socket), netns: 1)
    e.kind = 0
    if orphaned { e.flags |= UInt8(FW_FLAG_CLOSED) }
    if peerWaits { e.ts_peer_close_wait_ns = fw2 + ms }
    return e
  }

  func metrics(_ mode: ServeMode) -> [String: Double] {
    let text = String(decoding: mode.metrics.exposition(openMetrics: false), as: UTF8.self)
    var values: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
      guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
      values[String(line[..<space])] = value
    }
    return values
  }

  func testKernelCountedDwellsBecomeAnExactHistogramAndCounter() throws {
    let run = LoopRun(Array(repeating: [], count: 15))
    var key = fw_hist_key()
    key.path = UInt8(FW_PATH_SHUTDOWN_WR.rawValue)
    key.end = UInt8(FW_END_PEER_FIN.rawValue)
    withUnsafeMutableBytes(of: &key.comm) { $0.copyBytes(from: Array("nginx".utf8)) }
    var slots = [UInt64](repeating: 0, count: Int(FW_HIST_SLOTS))
    var sums = slots
    slots[21] = 3  // 2.1 s to 4.2 s
    sums[21] = 9_500_000_000
    run.source.histograms = [(key, slots, sums)]
    let (mode, _) = serve(run)
    try run.run(mode)
    let m = metrics(mode)
    let series = #"finwait_fin_wait2_duration_seconds_bucket{path="shutdown_wr",end="peer_fin",le="#
    XCTAssertEqual(m[series + #""2.097152"}"#], 0)
    XCTAssertEqual(m[series + #""4.194304"}"#], 3)
    XCTAssertEqual(m[series + #""+Inf"}"#], 3)
    XCTAssertEqual(try XCTUnwrap(m[#"finwait_fin_wait2_duration_seconds_sum{path="shutdown_wr",end="peer_fin"}"#]), 9.5, accuracy: 1e-9)
    XCTAssertEqual(m[#"finwait_fin_wait2_total{path="shutdown_wr",namespace="",pod="",container="",comm="nginx"}"#], 3)
    XCTAssertTrue(run.source.histograms.isEmpty, "taken")
  }

  func testSocketsHeldNowByStateOwnerStuckAndPeer() throws {
    let run = LoopRun(Array(repeating: [], count: 15))
    run.reconcile = false
    run.source.tracked = [
      1: held(1, since: start - 30 * s, comm: "nginx", peerWaits: true),
      2: held(2, since: start - 2 * s, comm: "nginx", orphaned: true),
      3: held(3, since: start, comm: "envoy"),
    ]
    let (mode, log) = serve(run, stuckAfter: 10 * s)
    try run.run(mode)
    let m = metrics(mode)
    let sockets = "finwait_fin_wait2_sockets"
    XCTAssertEqual(m[sockets + #"{state="attached",namespace="",pod="",container="",comm="nginx"}"#], 1)
    XCTAssertEqual(m[sockets + #"{state="orphaned",namespace="",pod="",container="",comm="nginx"}"#], 1)
    XCTAssertEqual(m[sockets + #"{state="attached",namespace="",pod="",container="",comm="envoy"}"#], 1)
    XCTAssertEqual(m[sockets + #"{state="attached",namespace="",pod="",container="",comm=""}"#], 0, "always exported")
    XCTAssertEqual(m[#"finwait_fin_wait2_stuck_sockets{namespace="",pod="",container="",comm="nginx"}"#], 1)
    XCTAssertNil(m[#"finwait_fin_wait2_stuck_sockets{namespace="",pod="",container="",comm="envoy"}"#])
    XCTAssertEqual(m["finwait_close_wait_peer_sockets"], 1)
    // Refreshed every second: at start + 1 s last.
    XCTAssertEqual(try XCTUnwrap(m["finwait_fin_wait2_oldest_seconds"]), 31, accuracy: 0.01)
    // One line for the one stuck socket, although every refresh sees it.
    let stuck = log.lines.filter { $0.contains("level=warning") }
    XCTAssertEqual(stuck.count, 1, "\(log.lines)")
    XCTAssertTrue(stuck[0].contains("comm=nginx") && stuck[0].contains("path=shutdown_wr") && stuck[0].contains("pid=4242"))
  }

  func testSocketsThatEndLeaveTheGaugeAndOwnersBeyondTheBudgetAreOther() throws {
    let run = LoopRun(Array(repeating: [], count: 25))
    run.reconcile = false
    run.source.tracked = [1: held(1, since: start, comm: "a"), 2: held(2, since: start, comm: "a"), 3: held(3, since: start, comm: "b"),
                          4: held(4, since: start, comm: "c")]
    run.source.beforeDrain = { [clock = run.clock, source = run.source] n in
      clock.now += 100 * ms
      if n == 12 { source.tracked[1] = nil }
    }
    let (mode, _) = serve(run, maxOwners: 2)
    try run.run(mode)
    let m = metrics(mode)
    XCTAssertEqual(m[#"finwait_fin_wait2_sockets{state="attached",namespace="",pod="",container="",comm="a"}"#], 1)
    XCTAssertEqual(m[#"finwait_fin_wait2_sockets{state="attached",namespace="other",pod="other",container="other",comm="other"}"#], 2)
    XCTAssertNil(m[#"finwait_fin_wait2_sockets{state="attached",namespace="",pod="",container="",comm="b"}"#])
  }

  func testLossCountersFollowTheLoopsAccount() throws {
    let run = LoopRun(Array(repeating: [], count: 15))
    run.source.beforeDrain = { [clock = run.clock, source = run.source] n in
      clock.now += 100 * ms
      source.counters.ringbufDrops = UInt64(n)
    }
    let (mode, _) = serve(run)
    try run.run(mode)
    let m = metrics(mode)
    XCTAssertEqual(m["finwait_ringbuf_drops_total"], 14)
    XCTAssertEqual(m["finwait_map_full_total"], 0)
    XCTAssertEqual(m["finwait_recursion_misses_total"], 0)
    XCTAssertFalse(mode.metrics.isReady, "not ready once stopped")
  }

  /// A kernel that does not count skipped runs (before 5.12): no series, not a 0.
  func testALossTheKernelDoesNotCountHasNoSeries() throws {
    let run = LoopRun([[]])
    run.source.counters.recursionMissesCounted = false
    let (mode, _) = serve(run)
    try run.run(mode)
    let m = metrics(mode)
    XCTAssertNil(m["finwait_recursion_misses_total"], "\(m.keys.sorted())")
    XCTAssertEqual(m["finwait_ringbuf_drops_total"], 0)
  }
}

/// An endpoint with fixed answers.
final class FixedEndpoint: MetricsEndpoint, @unchecked Sendable {
  var isReady = false
  let text = "# TYPE finwait_x_total counter\nfinwait_x_total 1\n"
  func exposition(openMetrics: Bool) -> [UInt8] {
    openMetrics ? Exposition.openMetrics(fromText: Array(text.utf8)) : Array(text.utf8)
  }
}

final class MetricsHTTPHandlerTests: XCTestCase {
  struct Response {
    var head: HTTPResponseHead
    var body: String
  }

  func exchange(_ uri: String, method: HTTPMethod = .GET, headers: HTTPHeaders = [:], endpoint: FixedEndpoint,
                keepAlive: Bool = true) throws -> (Response, EmbeddedChannel) {
    let channel = EmbeddedChannel(handler: MetricsHTTPHandler(endpoint: endpoint))
    try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9466)).wait()
    var head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    if !keepAlive { head.headers.add(name: "Connection", value: "close") }
    try channel.writeInbound(HTTPServerRequestPart.head(head))
    try channel.writeInbound(HTTPServerRequestPart.end(nil))
    guard case let .head(responseHead) = try XCTUnwrap(try channel.readOutbound(as: HTTPServerResponsePart.self)) else {
      throw XCTSkip("no head")
    }
    var body = ""
    while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
      if case let .body(.byteBuffer(buffer)) = part { body += String(buffer: buffer) }
    }
    return (Response(head: responseHead, body: body), channel)
  }

  func testReadinessFollowsTheEndpoint() throws {
    let endpoint = FixedEndpoint()
    XCTAssertEqual(try exchange("/readyz", endpoint: endpoint).0.head.status, .serviceUnavailable)
    XCTAssertEqual(try exchange("/healthz", endpoint: endpoint).0.head.status, .ok)
    endpoint.isReady = true
    XCTAssertEqual(try exchange("/readyz", endpoint: endpoint).0.head.status, .ok)
  }

  func testMetricsInTextOrOpenMetrics() throws {
    let endpoint = FixedEndpoint()
    let (text, _) = try exchange("/metrics", endpoint: endpoint)
    XCTAssertEqual(text.head.headers.first(name: "Content-Type"), Exposition.textContentType)
    XCTAssertEqual(text.body, endpoint.text)
    XCTAssertEqual(text.head.headers.first(name: "Content-Length"), String(endpoint.text.utf8.count))
    let (om, _) = try exchange(
      "/metrics", headers: ["Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"], endpoint: endpoint)
    XCTAssertEqual(om.head.headers.first(name: "Content-Type"), Exposition.openMetricsContentType)
    XCTAssertTrue(om.body.hasPrefix("# TYPE finwait_x counter\n") && om.body.hasSuffix("# EOF\n"), om.body)
  }

  func testOtherPathsAndMethods() throws {
    let endpoint = FixedEndpoint()
    XCTAssertEqual(try exchange("/nope", endpoint: endpoint).0.head.status, .notFound)
    let (post, _) = try exchange("/metrics", method: .POST, endpoint: endpoint)
    XCTAssertEqual(post.head.status, .methodNotAllowed)
    XCTAssertEqual(post.head.headers.first(name: "Allow"), "GET, HEAD")
    let (head, _) = try exchange("/metrics", method: .HEAD, endpoint: endpoint)
    XCTAssertEqual(head.head.status, .ok)
    XCTAssertEqual(head.body, "")
    XCTAssertEqual(try exchange("/metrics?x=1", endpoint: endpoint).0.head.status, .ok)
  }

  func testConnectionCloseIsHonoured() throws {
    let endpoint = FixedEndpoint()
    let (_, kept) = try exchange("/healthz", endpoint: endpoint)
    XCTAssertTrue(kept.isActive)
    let (response, closed) = try exchange("/healthz", endpoint: endpoint, keepAlive: false)
    XCTAssertEqual(response.head.headers.first(name: "Connection"), "close")
    closed.embeddedEventLoop.run()
    XCTAssertFalse(closed.isActive)
  }
}

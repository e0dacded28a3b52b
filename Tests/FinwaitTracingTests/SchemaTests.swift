import CFinwaitEvent
import FinwaitCore
import FinwaitTestSupport
import Foundation
import XCTest
@testable import FinwaitTracing

func validateAgainstSchema(_ lines: [String], file: StaticString = #filePath, line: UInt = #line) throws {
  let check = try schemaCheck(lines)
  XCTAssertEqual(check.status, 0, check.report, file: file, line: line)
}

/// What the loop writes with --json, every record type, against the schema
/// (no root: scripted records). The live suite checks real output too.
final class SchemaTests: XCTestCase {
  func testEveryRecordTypeTheLoopWritesMatchesTheSchema() throws {
    let start: UInt64 = 1_000 * s
    let fw2 = start + 20 * ms
    var orphan = KernelRecords.raw(
      kind: FW_KIND_LEAVE, socket: 0x10, ts: fw2 + 10_000, fw1: fw2 - ms, fw2: fw2, path: FW_PATH_CLOSE,
      syscall: FW_SYSCALL_CLOSE, end: FW_END_TIMEWAIT_ORPHAN, orphanAtEntry: true, orphanAtEnd: true, stack: 3,
      sport: 40001, netns: 1)
    orphan.ts_peer_close_wait_ns = fw2 - ms
    orphan.peer_netns = 1
    var peerClose = KernelRecords.raw(kind: FW_KIND_PEER_CLOSE, socket: 0x10, ts: fw2 + 200 * ms,
                                      owner: (777, "server"), sport: 40001, netns: 1)
    peerClose.ts_peer_close_wait_ns = fw2 - ms
    peerClose.peer_netns = 1
    let stuck = KernelRecords.raw(kind: FW_KIND_ENTER, socket: 0x20, ts: fw2, fw1: fw2 - ms, fw2: fw2, sport: 40002, netns: 1)
    let reset = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: 0x30, ts: fw2 + 5 * ms, fw1: fw2 - ms, fw2: fw2,
                                  end: FW_END_RESET, ipv6: true, sport: 40003, netns: 1)
    let unseen = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: 0x40, ts: fw2 + 5 * ms, end: FW_END_PEER_FIN,
                                   owner: nil, sport: 40004, netns: 1)
    let announce = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2 - ms, owner: (4242, "nginx"), stack: 3, netns: 1)
    let run = LoopRun([[announce, orphan, stuck, reset, unseen], [peerClose]] + [[fw_event]](repeating: [], count: 12))
    run.configuration.stuckAfter = 1 * s
    run.configuration.kernel.captureStacks = true
    run.source.stacks = [3: [0x40_0120, 0x40_0200]]
    run.processes.maps[4242] = "00400000-00401000 r-xp 00000000 fd:01 1234 /usr/bin/nginx\n"
    let timewait = DiagSocket(state: .finWait2, endpoints: endpoints(local: 40001), timer: 3, expiresMilliseconds: 59_000)
    run.sockets.sockets[1] = [
      DiagSocket(state: .finWait2, endpoints: endpoints(local: 50000), inode: 9, lastAckReceivedMilliseconds: 2_000),
      DiagSocket(state: .finWait2, endpoints: endpoints(local: 50001), timer: 3, expiresMilliseconds: 30_000),
    ]
    run.sockets.ownerTable = [9: Owner(pid: 42, tid: 42, comm: "old", cgroupID: 0)]
    run.source.beforeDrain = { [clock = run.clock, sockets = run.sockets] i in
      clock.now += 100 * ms
      if i == 0 { sockets.sockets[1]?.append(timewait) }
    }
    try run.run(jsonTrace())
    let types = Set(run.json.compactMap { $0["type"] as? String })
    XCTAssertEqual(types, ["existing", "ready", "fin_wait2", "stuck", "summary"], "\(run.stdout.lines)")
    let ends = Set(run.records("fin_wait2").compactMap { $0["end"] as? String })
    XCTAssertTrue(ends.isSuperset(of: ["peer_fin", "reset", "tracer_exit"]), "\(ends)")
    try validateAgainstSchema(run.stdout.lines)
  }

  /// The schema is closed: a key it does not know fails, so drift between
  /// the writer and docs/json.md cannot pass unnoticed.
  func testAnUnknownKeyFailsTheSchema() throws {
    let run = LoopRun([[]])
    run.reconcile = false
    try run.run(jsonTrace())
    let drifted = run.stdout.lines.map { $0.replacingOccurrences(of: "{\"type\":\"summary\",", with: "{\"type\":\"summary\",\"extra\":1,") }
    let check = try schemaCheck(drifted)
    XCTAssertEqual(check.status, 1, check.report)
    XCTAssertTrue(check.report.contains("extra"), check.report)
  }

  /// A kernel that does not count skipped runs (before 5.12) gives null, not
  /// 0; the schema takes it, and a string in its place still fails.
  func testUncountedRecursionMissesAreNullInTheSchema() throws {
    var kernel = KernelCounters(ringbufDrops: 1)
    kernel.recursionMissesCounted = false
    let line = Summary().json(losses: LossAccount(kernel: kernel), tracedFor: 1)
    XCTAssertTrue(line.contains("\"recursion_misses\":null"), line)
    try validateAgainstSchema([line])
    let wrong = line.replacingOccurrences(of: "\"recursion_misses\":null", with: "\"recursion_misses\":\"n/a\"")
    XCTAssertEqual(try schemaCheck([wrong]).status, 1)
  }
}

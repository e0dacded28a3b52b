import Foundation
import CFinwaitEvent
import FinwaitCore
import FinwaitTestSupport
import XCTest
@testable import FinwaitTracing

/// The one tracing loop and its modes on scripted records, sockets and
/// processes: what the live tests show as root, without root.
final class TracingLoopTests: XCTestCase {
  let start: UInt64 = 1_000 * s  // ManualClock's first reading
  let socket: UInt64 = 0xffff_8881_0000_1000

  func attachedEnter(at fw2: UInt64) -> fw_event {
    KernelRecords.raw(kind: FW_KIND_ENTER, socket: socket, ts: fw2, fw1: fw2 - ms, fw2: fw2, netns: 1)
  }

  func leave(at ts: UInt64, enteredAt fw2: UInt64, end: fw_end = FW_END_PEER_FIN) -> fw_event {
    KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket, ts: ts, fw1: fw2 - ms, fw2: fw2, end: end, netns: 1)
  }

  func testRecordsFromTwoCPUsOutOfOrderAreOneConnection() throws {
    let fw2 = start + 50 * ms
    // The LEAVE (softirq on one CPU) is drained before its own ENTER (another CPU).
    let run = LoopRun([[leave(at: fw2 + 300 * ms, enteredAt: fw2)], [attachedEnter(at: fw2)], []])
    run.configuration.stuckAfter = 100 * ms
    try run.run(jsonTrace())
    XCTAssertEqual(run.json.first?["type"] as? String, "ready", "\(run.stdout.lines)")
    let ended = run.records("fin_wait2")
    XCTAssertEqual(ended.count, 1, "\(run.stdout.lines)")
    XCTAssertEqual(ended.first?["dwell_ns"] as? Int, Int(300 * ms))
    XCTAssertEqual(ended.first?["end"] as? String, "peer_fin")
    XCTAssertTrue(run.records("stuck").isEmpty, "a late ENTER opens nothing to be stuck")
    XCTAssertEqual(run.records("summary").first?["lost_ends"] as? Int, 0)
  }

  func testStuckIsReportedOnceAndTheEndStillCounts() throws {
    let fw2 = start + 50 * ms
    let quiet = [[fw_event]](repeating: [], count: 20)
    let run = LoopRun([[attachedEnter(at: fw2)]] + quiet + [[leave(at: fw2 + 2_500 * ms, enteredAt: fw2)]])
    run.configuration.stuckAfter = 1 * s
    try run.run(jsonTrace())
    XCTAssertEqual(run.records("stuck").count, 1, "\(run.stdout.lines)")
    XCTAssertEqual(run.records("fin_wait2").first?["dwell_ns"] as? Int, Int(2_500 * ms))
    XCTAssertEqual(run.records("summary").first?["stuck"] as? Int, 1)
  }

  /// The map holds a socket in FIN_WAIT1 whose FIN_WAIT2 start the program
  /// never saw; sock_diag shows it in FIN_WAIT2. Every mode recovers it.
  func skippedStart() -> LoopRun {
    let fw1 = start + 10 * ms
    let run = LoopRun([[fw_event]](repeating: [], count: 80))
    var entry = KernelRecords.raw(kind: FW_KIND_ENTER, socket: socket, ts: fw1, fw1: fw1, netns: 1)
    entry.kind = 0  // as stored: no record kind before FIN_WAIT2
    run.source.tracked[socket] = entry
    run.sockets.sockets[1] = [DiagSocket(state: .finWait2, endpoints: endpoints(), inode: 5, lastAckReceivedMilliseconds: 100)]
    run.configuration.stuckAfter = 3 * s
    return run
  }

  func testASkippedStartIsRecoveredInTrace() throws {
    let run = skippedStart()
    try run.run(jsonTrace())
    XCTAssertEqual(run.records("stuck").count, 1, "recovered, then watched like any attached connection: \(run.stdout.lines)")
    XCTAssertEqual(run.records("summary").first?["recovered_starts"] as? Int, 1)
    XCTAssertEqual(run.source.tracked[socket].map { $0.flags & UInt8(FW_FLAG_FIN_WAIT2_INFERRED) != 0 }, true,
                   "the kernel map is repaired, so its end is counted by the program")
  }

  func testASkippedStartIsRecoveredInTopAndShownAsNow() throws {
    let run = skippedStart()
    try run.run(plainTop())
    let last = run.stdout.lines.last { $0.hasPrefix("finwait top") } ?? ""
    XCTAssertTrue(last.contains("in FIN_WAIT2: 1 (attached 1, orphaned 0)"), "\(run.stdout.lines.suffix(8))")
    XCTAssertTrue(run.stdout.lines.contains { $0.hasPrefix("4242 nginx") }, "\(run.stdout.lines.suffix(8))")
  }

  func testASkippedStartIsCountedInHist() throws {
    let run = skippedStart()
    try run.run(HistMode(options: HistMode.Options()))
    XCTAssertTrue(run.stderr.lines.contains { $0.hasPrefix("finwait: Losses: ") && $0.contains("recovered_starts 1") },
                  "\(run.stderr.lines)")
  }

  /// An attached connection whose end the kernel skipped (a recursion miss)
  /// and whose socket is gone: the audit drops it as lost in every mode.
  func vanishedEnd() -> LoopRun {
    let fw2 = start + 10 * ms
    let run = LoopRun([[attachedEnter(at: fw2)]] + [[fw_event]](repeating: [], count: 80))
    var stored = attachedEnter(at: fw2)
    stored.kind = UInt8(FW_KIND_ENTER.rawValue)
    run.source.tracked[socket] = stored
    run.source.counters.recursionMisses = 1
    return run
  }

  func testAVanishedEndIsReportedLostInTrace() throws {
    let run = vanishedEnd()
    try run.run(jsonTrace())
    let lost = run.records("fin_wait2").filter { $0["end"] as? String == "lost" }
    XCTAssertEqual(lost.count, 1, "\(run.stdout.lines)")
    XCTAssertEqual(run.records("summary").first?["lost_ends"] as? Int, 1)
    XCTAssertNil(run.source.tracked[socket], "the entry is dropped from the kernel map")
  }

  func testAVanishedEndLeavesTopsNow() throws {
    let run = vanishedEnd()
    try run.run(plainTop())
    let headers = run.stdout.lines.filter { $0.hasPrefix("finwait top") }
    XCTAssertTrue(headers.first?.contains("in FIN_WAIT2: 1 (attached 1") ?? false, "\(headers)")
    XCTAssertTrue(headers.last?.contains("in FIN_WAIT2: 0 (attached 0") ?? false, "\(headers)")
    XCTAssertTrue(run.stdout.lines.contains("losses: lost_ends 1, recursion_misses 1"), "\(run.stdout.lines.suffix(10))")
  }

  func testEveryModeReportsTheSameLossCounters() throws {
    func lossy() -> LoopRun {
      var garbage = KernelRecords.raw(kind: FW_KIND_LEAVE, ts: start, netns: 1)
      garbage.kind = 99
      let run = LoopRun([[garbage], []])
      run.source.counters.ringbufDrops = 3
      run.source.counters.mapFull = 2
      run.reconcile = false
      return run
    }
    let expected = "ringbuf_drops 3, map_full 2, lost_ends 0, undecodable 1, unseen_start 0, recursion_misses 0, "
      + "recovered_starts 0, stale_entries 0, hist_full 0, stack_lost 0"

    let json = lossy()
    try json.run(jsonTrace())
    let summary = try XCTUnwrap(json.records("summary").first)
    for counter in LossAccount.Counter.allCases {
      XCTAssertNotNil(summary[counter.rawValue] as? Int, "summary key \(counter.rawValue)")
    }
    XCTAssertEqual(summary["ringbuf_drops"] as? Int, 3)
    XCTAssertEqual(summary["undecodable"] as? Int, 1)

    let text = lossy()
    try text.run(TraceMode(options: TraceMode.Options()))
    XCTAssertTrue(text.stdout.lines.contains("Losses: " + expected), "\(text.stdout.lines.suffix(3))")

    let hist = lossy()
    try hist.run(HistMode(options: HistMode.Options()))
    XCTAssertEqual(hist.stderr.lines.last, "finwait: Losses: " + expected)

    let top = lossy()
    try top.run(plainTop(interval: 2 * s))
    XCTAssertTrue(top.stdout.lines.contains("losses: ringbuf_drops 3, map_full 2, undecodable 1"), "\(top.stdout.lines)")
  }

  /// An orphan handed to timewait; its local peer closes just after a timed
  /// drain and before the dump that sees the timewait socket in TIME_WAIT.
  /// The peer's PEER_CLOSE record is queued by then: the loop drains it
  /// before acting on the dump, so the peer is named however late the drain.
  func testAPeerThatClosesJustBeforeTheDumpIsStillNamed() throws {
    let fw2 = start + 20 * ms
    var orphan = KernelRecords.raw(
      kind: FW_KIND_LEAVE, socket: socket, ts: fw2 + 10_000, fw1: fw2 - ms, fw2: fw2, path: FW_PATH_CLOSE,
      syscall: FW_SYSCALL_CLOSE, end: FW_END_TIMEWAIT_ORPHAN, orphanAtEntry: true, orphanAtEnd: true, netns: 1)
    orphan.ts_peer_close_wait_ns = fw2 - ms
    orphan.peer_netns = 1
    let run = LoopRun([[orphan]] + [[fw_event]](repeating: [], count: 10))
    let timewait = DiagSocket(state: .finWait2, endpoints: endpoints(), timer: 3, expiresMilliseconds: 59_000)
    let source = run.source
    let clock = run.clock
    // Handed to timewait after finwait started: not listed at start.
    source.beforeDrain = { [sockets = run.sockets] i in
      clock.now += 100 * ms
      if i == 0 { sockets.sockets[1] = [timewait] }
    }
    var closed = false
    run.sockets.onDump = { [unowned sockets = run.sockets] _ in
      guard !closed, clock.now >= fw2 + 400 * ms else { return }
      closed = true
      var peerClose = KernelRecords.raw(
        kind: FW_KIND_PEER_CLOSE, socket: self.socket, ts: clock.now, owner: (777, "server"), netns: 1)
      peerClose.ts_peer_close_wait_ns = fw2 - ms
      peerClose.peer_netns = 1
      source.queued.append(peerClose)
      var ended = timewait
      ended.state = .timeWait
      ended.expiresMilliseconds = 60_000
      sockets.sockets[1] = [ended]
    }
    try run.run(jsonTrace())
    let records = run.records("fin_wait2")
    XCTAssertEqual(records.count, 1, "\(run.stdout.lines)")
    XCTAssertEqual(records.first?["end"] as? String, "peer_fin")
    XCTAssertEqual(records.first?["peer_comm"] as? String, "server", "\(records)")
    XCTAssertEqual(records.first?["peer_pid"] as? Int, 777)
  }

  /// `--stack`: a stack is named when its announcement arrives, from the
  /// closer's maps; a closer already gone keeps its addresses, unnamed.
  func testStacksAreNamedAtTheirAnnouncementAndAGoneProcessKeepsItsAddresses() throws {
    let fw2 = start + 20 * ms
    let announce = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2 - ms, owner: (500, "server"), stack: 3, netns: 1)
    let gone = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2 - ms, owner: (501, "brief"), stack: 4, netns: 1)
    var first = leave(at: fw2 + 5 * ms, enteredAt: fw2)
    first.stack_id = 3
    var second = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket + 64, ts: fw2 + 6 * ms, fw1: fw2 - ms, fw2: fw2,
                                   end: FW_END_PEER_FIN, owner: (501, "brief"), stack: 4, sport: 41300, netns: 1)
    second.stack_id = 4
    let run = LoopRun([[announce, gone], [first, second], []])
    run.configuration.kernel.captureStacks = true
    run.reconcile = false
    run.source.stacks = [3: [0x40_0120], 4: [0x7f00_0000_1234]]
    run.processes.maps[500] = "00400000-00401000 r-xp 00000000 fd:01 1234 /usr/bin/server\n"
    // 500 exits after its announcement was handled: its maps are no longer needed.
    run.source.beforeDrain = { [clock = run.clock, processes = run.processes] i in
      clock.now += 100 * ms
      if i == 1 { processes.maps[500] = nil }
    }
    try run.run(jsonTrace())
    let records = run.records("fin_wait2")
    XCTAssertEqual(records.count, 2, "\(run.stdout.lines)")
    let named = try XCTUnwrap(records.first { $0["pid"] as? Int == 4242 || $0["stack_id"] as? Int == 3 })
    let frames = try XCTUnwrap(named["stack"] as? [[String: Any]])
    XCTAssertEqual(frames.first?["module"] as? String, "/usr/bin/server")
    let unnamed = try XCTUnwrap(records.first { $0["stack_id"] as? Int == 4 })
    let bare = try XCTUnwrap(unnamed["stack"] as? [[String: Any]])
    XCTAssertEqual(bare.first?["address"] as? String, "0x7f0000001234")
    XCTAssertTrue(bare.first?["module"] is NSNull)
    XCTAssertEqual(run.processes.mapsRead.filter { $0 == 500 }.count, 1, "each stack is named once")
  }

  /// A closer that exited before the loop got to its announcement is still
  /// named, from the maps the source read on the announcement's wakeup.
  /// Pinned maps are dropped once their announcements are handled: a stack
  /// of the same process never announced is not named from them.
  func testAGoneCloserIsNamedFromTheMapsReadOnItsWakeup() throws {
    let fw2 = start + 20 * ms
    let maps = "00400000-00401000 r-xp 00000000 fd:01 1234 /usr/bin/brief\n"
    let announce = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2 - ms, owner: (501, "brief"), stack: 4, netns: 1)
    var first = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket, ts: fw2 + 5 * ms, fw1: fw2 - ms, fw2: fw2,
                                  end: FW_END_PEER_FIN, owner: (501, "brief"), stack: 4, sport: 41300, netns: 1)
    first.stack_id = 4
    var later = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket + 64, ts: fw2 + 6 * ms, fw1: fw2 - ms, fw2: fw2,
                                  end: FW_END_PEER_FIN, owner: (501, "brief"), stack: 6, sport: 41301, netns: 1)
    later.stack_id = 6
    let run = LoopRun([[], [first], [later], []])
    run.configuration.kernel.captureStacks = true
    run.reconcile = false
    run.source.stacks = [4: [0x40_0120], 6: [0x40_0130]]
    // The closer is gone from /proc (run.processes has no maps for it).
    run.source.beforeDrain = { [clock = run.clock, source = run.source] i in
      clock.now += 100 * ms
      if i == 1 { source.announced = [(announce, maps)] }
    }
    try run.run(jsonTrace())
    let records = run.records("fin_wait2")
    XCTAssertEqual(records.count, 2, "\(run.stdout.lines)")
    let named = try XCTUnwrap(records.first { $0["stack_id"] as? Int == 4 }, "\(records)")
    let frames = try XCTUnwrap(named["stack"] as? [[String: Any]])
    XCTAssertEqual(frames.first?["module"] as? String, "/usr/bin/brief", "\(named)")
    let bare = try XCTUnwrap((records.first { $0["stack_id"] as? Int == 6 })?["stack"] as? [[String: Any]])
    XCTAssertTrue(bare.first?["module"] is NSNull, "\(bare)")
    XCTAssertEqual(run.processes.mapsRead, [501], "/proc is read only for the stack never announced")
  }

  /// A closer gone even before the source's thread woke (finwait was
  /// descheduled) is named from what the kernel saw at its FIN: each frame's
  /// build id and file offset, the file found at the executable path the
  /// kernel gave or among finwait's own libraries. A frame in a file found
  /// nowhere stays an address.
  func testACloserGoneBeforeItsWakeupIsNamedFromWhatTheKernelSaw() throws {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let code = try XCTUnwrap(ELFCode(bytes: bytes))
    let elf = try XCTUnwrap(ELFSymbols(bytes))
    // Two functions of this binary, as if the closer had called them.
    let functions = elf.symbols.filter { $0.size >= 16 }.prefix(2)
    let offsets = try functions.map { f in
      let s = try XCTUnwrap(elf.segments.first { f.address >= $0.address && f.address < $0.address + $0.size })
      return f.address - s.address + s.offset + 8
    }
    let base: UInt64 = 0x5555_0000_0000
    let libc = ELFCode(buildID: [UInt8](repeating: 0xc0, count: 20),
                       executable: [.init(offset: 0, address: 0, size: 0x1000)])
    let frames: [StackOrigin.Frame?] = [.init(buildID: code.buildID, fileOffset: offsets[0]), nil,
                                        .init(buildID: libc.buildID, fileOffset: 0x10)]
    let fw2 = start + 20 * ms
    let announce = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2 - ms, owner: (501, "app"), stack: 4, netns: 1)
    var leave = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket, ts: fw2 + 5 * ms, fw1: fw2 - ms, fw2: fw2,
                                  end: FW_END_PEER_FIN, owner: (501, "app"), stack: 4, sport: 41300, netns: 1)
    leave.stack_id = 4
    var second = KernelRecords.raw(kind: FW_KIND_LEAVE, socket: socket + 64, ts: fw2 + 6 * ms, fw1: fw2 - ms, fw2: fw2,
                                   end: FW_END_PEER_FIN, owner: (502, "app"), stack: 5, sport: 41301, netns: 1)
    second.stack_id = 5
    let run = LoopRun([[], [leave], [second], []])
    run.configuration.kernel.captureStacks = true
    run.reconcile = false
    run.source.stacks = [4: [base + offsets[0], 0x7000_0000_0000, 0x7f00_0000_0010],
                         5: [base + 0x1000 + offsets[1]]]
    run.source.origins = [4: StackOrigin(frames: frames, executables: ["/gone", "/srv/app"]),
                          5: StackOrigin(frames: [.init(buildID: code.buildID, fileOffset: offsets[1])], executables: [])]
    run.processes.files["/srv/app"] = bytes
    run.processes.ownProcess = 7
    run.processes.maps[7] = "7f0000000000-7f0000001000 r-xp 00000000 fd:01 9 /lib/libc.so.6\n"
    let second5 = KernelRecords.raw(kind: FW_KIND_STACK, ts: fw2, owner: (502, "app"), stack: 5, netns: 1)
    run.source.beforeDrain = { [clock = run.clock, source = run.source] i in
      clock.now += 100 * ms
      if i == 1 { source.announced = [(announce, nil)] }  // gone before its maps were read
      if i == 2 { source.announced = [(second5, nil)] }
    }
    try run.run(jsonTrace())
    let records = run.records("fin_wait2")
    XCTAssertEqual(records.count, 2, "\(run.stdout.lines)")
    let named = try XCTUnwrap((records.first { $0["stack_id"] as? Int == 4 })?["stack"] as? [[String: Any]])
    XCTAssertEqual(named.map { $0["module"] as? String }, ["/srv/app", nil, nil], "\(named)")
    XCTAssertEqual(named.first?["symbol"] as? String, functions.first?.name)
    XCTAssertEqual(named.first?["offset"] as? Int, 8)
    // A second process of the same executable, without a path: found by build id, as learned.
    let again = try XCTUnwrap((records.first { $0["stack_id"] as? Int == 5 })?["stack"] as? [[String: Any]])
    XCTAssertEqual(again.first?["symbol"] as? String, functions.last?.name, "\(again)")
    XCTAssertEqual(run.processes.pathsOpened.filter { $0 == "/srv/app" }.count, 1, "each file is looked for once")
    XCTAssertEqual(run.processes.pathsOpened.filter { $0 == "/lib/libc.so.6" }.count, 1,
                   "finwait's own libraries are read once")
  }

  func testReadyComesAfterTheConnectionsFoundAtStart() throws {
    let fw2 = start + 50 * ms
    let run = LoopRun([[leave(at: fw2 + 10 * ms, enteredAt: fw2)], []])
    run.sockets.sockets[1] = [DiagSocket(state: .finWait2, endpoints: endpoints(local: 50000), inode: 9,
                                         lastAckReceivedMilliseconds: 2_000)]
    run.sockets.ownerTable = [9: Owner(pid: 42, tid: 42, comm: "old", cgroupID: 0)]
    try run.run(jsonTrace())
    let types = run.json.map { $0["type"] as? String ?? "?" }
    XCTAssertEqual(Array(types.prefix(3)), ["existing", "ready", "fin_wait2"], "\(run.stdout.lines)")
    XCTAssertEqual(types.last, "summary")
    XCTAssertEqual(run.json.first?["comm"] as? String, "old")
  }

  func testTheDurationEndsTheLoop() throws {
    let run = LoopRun([[fw_event]](repeating: [], count: 100))
    run.configuration.duration = 1 * s
    run.reconcile = false
    try run.run(jsonTrace())
    XCTAssertLessThanOrEqual(run.source.timedDrains, 11, "1 s of 100 ms drains")
    XCTAssertTrue(run.source.detached)
    XCTAssertEqual(run.records("summary").first?["traced_ns"] as? Int, Int(run.source.timedDrains) * Int(100 * ms))
  }

  func testAReaderThatWentAwayStopsTheLoopQuietly() throws {
    let run = LoopRun([[fw_event]](repeating: [], count: 100))
    run.reconcile = false
    run.stdout.readerGone = true
    try run.run(jsonTrace())
    XCTAssertEqual(run.source.timedDrains, 0)
    XCTAssertTrue(run.stdout.lines.isEmpty)
  }

  func testReadinessWritesReadyToItsDescriptorAndClosesIt() throws {
    var fds: [Int32] = [0, 0]
    XCTAssertEqual(pipe(&fds), 0)
    defer { close(fds[0]) }
    Readiness(fd: fds[1]).signal()
    var buffer = [UInt8](repeating: 0, count: 16)
    let n = read(fds[0], &buffer, buffer.count)
    XCTAssertEqual(String(decoding: buffer.prefix(max(n, 0)), as: UTF8.self), "ready\n")
    XCTAssertEqual(read(fds[0], &buffer, buffer.count), 0, "closed after the one line: a reader sees EOF")
  }
}

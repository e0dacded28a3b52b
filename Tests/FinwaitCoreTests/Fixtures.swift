import CFinwaitEvent
import FinwaitTestSupport
@testable import FinwaitCore

/// Synthetic kernel records, built the way the BPF program fills them.
enum Fixture {
  static let ms: UInt64 = 1_000_000

  static func raw(
    kind: fw_kind, socket: UInt64 = 0xffff_8881_0000_1000, ts: UInt64,
    fw1: UInt64 = 0, fw2: UInt64? = nil, path: fw_path = FW_PATH_SHUTDOWN_WR,
    syscall: fw_syscall = FW_SYSCALL_SHUTDOWN, end: fw_end = FW_END_NONE,
    owner: (pid: UInt32, comm: String)? = (4242, "nginx"),
    orphanAtEntry: Bool = false, orphanAtEnd: Bool = false, ipv6: Bool = false, stack: Int16 = -1
  ) -> fw_event {
    KernelRecords.raw(
      kind: kind, socket: socket, ts: ts, fw1: fw1, fw2: fw2, path: path, syscall: syscall, end: end, owner: owner,
      orphanAtEntry: orphanAtEntry, orphanAtEnd: orphanAtEnd, ipv6: ipv6, stack: stack)
  }

  static func event(
    _ kind: fw_kind, socket: UInt64 = 0xffff_8881_0000_1000, ts: UInt64, fw2: UInt64? = nil,
    end: fw_end = FW_END_NONE, orphanAtEntry: Bool = false, orphanAtEnd: Bool = false,
    owner: (pid: UInt32, comm: String)? = (4242, "nginx"), path: fw_path = FW_PATH_SHUTDOWN_WR
  ) -> Event {
    // Fixtures are valid by construction; a decode failure is a test bug.
    try! Event(decoding: raw(
      kind: kind, socket: socket, ts: ts, fw1: fw2.map { $0 - 1 } ?? 0, fw2: fw2, path: path,
      end: end, owner: owner, orphanAtEntry: orphanAtEntry, orphanAtEnd: orphanAtEnd))
  }
}

extension Fixture {
  /// A finished record of a `close` connection with the given dwell and end.
  static func record(_ dwell: Dwell, end: End?, kind: Record.Kind = .finWait2, path: fw_path = FW_PATH_CLOSE) -> Record {
    var h = TrackerHarness()
    h.feed(Fixture.event(FW_KIND_LEAVE, ts: 10, fw2: 5, end: FW_END_PEER_FIN, path: path))
    var r = h.records[0]
    r.kind = kind
    r.dwell = dwell
    r.end = end
    return r
  }
}

/// Runs the tracker over events and collects what it emits.
struct TrackerHarness {
  var tracker: ConnectionTracker
  var records: [Record] = []

  init(stuckAfter: UInt64? = nil, tracingSince: UInt64 = 0, reconcilesOrphans: Bool = false) {
    tracker = ConnectionTracker(stuckAfter: stuckAfter, tracingSince: tracingSince, reconcilesOrphans: reconcilesOrphans)
  }

  mutating func observe(netns: UInt32, _ sockets: [DiagSocket], at now: UInt64, finTimeout: UInt64?) {
    tracker.observe(netns: netns, sockets: sockets, at: now, finTimeout: finTimeout) { records.append($0) }
  }

  mutating func feed(_ events: Event...) {
    for e in events { tracker.handle(e) { records.append($0) } }
  }

  mutating func tick(_ now: UInt64) {
    tracker.reportStuck(now: now) { records.append($0) }
  }

  mutating func finish(_ now: UInt64, inFlight: [Event] = []) {
    tracker.finish(at: now, inFlight: inFlight) { records.append($0) }
  }
}

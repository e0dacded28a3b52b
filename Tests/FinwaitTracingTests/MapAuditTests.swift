import CFinwaitEvent
import FinwaitCore
import FinwaitTestSupport
import XCTest
@testable import FinwaitTracing

/// The map audit against a scripted map and socket table, without root.
final class MapAuditTests: XCTestCase {
  /// A sweep after skipped runs dumps every FIN_WAIT2 socket of the map's
  /// namespaces. With 200,000 of them that takes about a second, as long as
  /// a burst needs to fill the ring buffer: the ring is drained during the
  /// dump, not only after it (bench/memory.sh dropped 29,780-57,310 records).
  func testALargeSweepDrainsTheRingBufferAsItGoes() {
    let sockets = ScriptedSockets()
    let dumped = 3 * MapAudit.drainEvery.sockets + 5
    var held: [DiagSocket] = []
    for i in 0..<dumped {
      let local = IPAddress.v4(10, 0, UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i))
      let endpoints = Endpoints(local: local, localPort: 40000, remote: .v4(10, 9, 9, 9), remotePort: 80)
      held.append(DiagSocket(state: .finWait2, endpoints: endpoints, inode: UInt32(i + 1)))
    }
    sockets.sockets[1] = held
    let source = ScriptedRecordSource()
    source.tracked[1] = KernelRecords.raw(kind: FW_KIND_ENTER, socket: 1, ts: 1, fw1: 1, fw2: 1, netns: 1)
    source.counters = KernelCounters(recursionMisses: 1)  // new misses: every entry is swept
    let audit = MapAudit(sockets: sockets)
    audit.clock = { 10_000_000_000 }
    var drains = 0
    _ = audit.check(source, now: 10_000_000_000, meanwhile: { drains += 1 })
    // After the map walk, three times within the dump, once after it.
    XCTAssertEqual(drains, 1 + 3 + 1)
  }
}

import CFinwaitEvent

/// A periodic stream of raw `fw_event` records: one period of a node's FIN
/// traffic, in ring-buffer order. Replayed pass after pass with every
/// timestamp moved one period on, it never goes back in time, so the
/// consumer's state reaches a steady state instead of growing or resetting.
public struct SyntheticStream {
  public private(set) var records: [fw_event]
  /// Nanoseconds one pass covers.
  public let period: UInt64
  /// A tracer start before the first record, for the tracker.
  public let tracingSince: UInt64
  public let connections: Int
  public let slots: Int
  /// Records delivered before a record with an earlier timestamp.
  public let outOfOrder: Int
  public let scenarioCounts: [String: Int]

  static let us: Int64 = 1_000
  static let ms: Int64 = 1_000_000
  static let s: Int64 = 1_000_000_000
  /// Ring-buffer records are reserved after their timestamp is read, on
  /// several CPUs: the order can differ from timestamp order by about this.
  static let cpuSkew: Int64 = 4 * us

  public init(slots: Int = 4096, periodSeconds: Int64 = 300, seed: UInt64 = 0xF1_4A17) {
    let period = periodSeconds * Self.s
    var rng = SplitMix64(seed: seed)
    var timed: [(deliver: Int64, sequence: Int, event: fw_event)] = []
    var connections = 0
    var counts: [String: Int] = [:]
    for index in 0..<slots {
      let slot = Slot(index: index)
      let first = rng.uniform(0, 20 * Self.s)
      var start = first
      var generation = 0
      while true {
        let scenario = Scenario.pick(&rng)
        let port = UInt16(32768 + (index &* 7 &+ generation &* 4099) % 28232)
        let (records, busyUntil) = Self.plan(scenario, slot: slot, port: port, at: start, rng: &rng)
        // A slot's connections follow each other around the period's circle
        // without overlapping, so the 4-tuple and socket are free when reused.
        guard busyUntil + Self.s <= first + period else { break }
        for r in records {
          var event = r.event
          var deliver = r.time + rng.uniform(0, Self.cpuSkew)
          if deliver >= period {
            // Belongs to the next pass: delivered early in this one, one period back.
            deliver -= period
            Self.shift(&event, by: -period)
          }
          timed.append((deliver, timed.count, event))
        }
        connections += 1
        counts["\(scenario)", default: 0] += 1
        generation += 1
        start = busyUntil + rng.uniform(2 * Self.s, 20 * Self.s)
      }
    }
    timed.sort { ($0.deliver, $0.sequence) < ($1.deliver, $1.sequence) }
    records = timed.map(\.event)
    var latest: UInt64 = 0
    var outOfOrder = 0
    for r in records {
      if r.ts_ns < latest { outOfOrder += 1 }
      latest = max(latest, r.ts_ns)
    }
    self.period = UInt64(period)
    self.tracingSince = Relative.encode(-Self.s)
    self.connections = connections
    self.slots = slots
    self.outOfOrder = outOfOrder
    self.scenarioCounts = counts
  }

  /// The stream one period later: the next pass.
  public mutating func advance() {
    let period = Int64(period)
    for i in records.indices { Self.shift(&records[i], by: period) }
  }

  /// Moves every timestamp the record carries; 0 stays "not seen".
  static func shift(_ e: inout fw_event, by delta: Int64) {
    func moved(_ t: UInt64) -> UInt64 { UInt64(bitPattern: Int64(bitPattern: t) &+ delta) }
    e.ts_ns = moved(e.ts_ns)
    if e.ts_fin_wait1_ns != 0 { e.ts_fin_wait1_ns = moved(e.ts_fin_wait1_ns) }
    if Int32(e.flags) & FW_FLAG_FIN_WAIT2_SEEN != 0 { e.ts_fin_wait2_ns = moved(e.ts_fin_wait2_ns) }
    if e.ts_peer_close_wait_ns != 0 { e.ts_peer_close_wait_ns = moved(e.ts_peer_close_wait_ns) }
  }
}

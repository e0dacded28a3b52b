import CFinwaitEvent

/// What the BPF program counted: every loss it knows of.
public struct KernelCounters: Sendable, Equatable {
  /// Records lost because the ring buffer was full.
  public var ringbufDrops: UInt64
  /// Connections not tracked because the per-socket map was full.
  public var mapFull: UInt64
  /// FIN_WAIT2 transitions of sockets whose FIN_WAIT1 was not seen.
  public var unseenStart: UInt64

  public init(ringbufDrops: UInt64 = 0, mapFull: UInt64 = 0, unseenStart: UInt64 = 0) {
    self.ringbufDrops = ringbufDrops
    self.mapFull = mapFull
    self.unseenStart = unseenStart
  }

  public init(_ raw: fw_counters) {
    self.init(ringbufDrops: raw.ringbuf_drops, mapFull: raw.map_full, unseenStart: raw.unseen_start)
  }
}

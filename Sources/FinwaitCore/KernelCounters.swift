import CFinwaitEvent

/// What the BPF program counted: every loss it knows of.
public struct KernelCounters: Sendable, Equatable {
  /// Records lost because the ring buffer was full.
  public var ringbufDrops: UInt64
  /// Connections not tracked because the per-socket map was full.
  public var mapFull: UInt64
  /// FIN_WAIT2 transitions of sockets whose FIN_WAIT1 was not seen.
  public var unseenStart: UInt64
  /// State changes the kernel did not run the program for: it was already
  /// running on that CPU (a softirq interrupted it). Each may be a lost start
  /// or end.
  public var recursionMisses: UInt64
  /// Whether the kernel counts those at all (Linux 5.12+ for tp_btf): if
  /// not, `recursion_misses` is shown as unknown, never as 0.
  public var recursionMissesCounted = true
  /// `finwait hist`: dwells not counted because the histogram map was full.
  public var histFull: UInt64 = 0
  /// `--stack`: closers whose stack was not kept (its bucket in the stack
  /// map held another stack); their records carry no stack.
  public var stackLost: UInt64 = 0

  public init(ringbufDrops: UInt64 = 0, mapFull: UInt64 = 0, unseenStart: UInt64 = 0, recursionMisses: UInt64 = 0) {
    self.ringbufDrops = ringbufDrops
    self.mapFull = mapFull
    self.unseenStart = unseenStart
    self.recursionMisses = recursionMisses
  }

  public init(_ raw: fw_counters, recursionMisses: UInt64 = 0) {
    self.init(ringbufDrops: raw.ringbuf_drops, mapFull: raw.map_full, unseenStart: raw.unseen_start,
              recursionMisses: recursionMisses)
    histFull = raw.hist_full
    stackLost = raw.stack_lost
  }
}

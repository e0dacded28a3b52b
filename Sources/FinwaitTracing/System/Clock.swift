#if canImport(Glibc)
import Glibc
#endif
import FinwaitCore

/// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns().
public func monotonicNow() -> UInt64 {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

extension WallClock {
  /// The offset between CLOCK_REALTIME and CLOCK_MONOTONIC, read now.
  public static func now() -> WallClock {
    var real = timespec()
    clock_gettime(CLOCK_REALTIME, &real)
    let mono = monotonicNow()
    let realNs = Int64(real.tv_sec) * 1_000_000_000 + Int64(real.tv_nsec)
    return WallClock(offset: realNs - Int64(mono))
  }
}

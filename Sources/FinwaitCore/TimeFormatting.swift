#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts kernel CLOCK_MONOTONIC timestamps to wall-clock time, with the
/// offset between the two clocks taken once at start.
public struct WallClock: Sendable, Equatable {
  /// CLOCK_REALTIME minus CLOCK_MONOTONIC, in nanoseconds.
  public var offset: Int64

  public init(offset: Int64) {
    self.offset = offset
  }

  /// Seconds and nanoseconds since the Unix epoch.
  public func wallTime(ofMonotonic ns: UInt64) -> (seconds: Int64, nanoseconds: Int64) {
    let wall = Int64(bitPattern: ns) &+ offset
    return (wall / 1_000_000_000, wall % 1_000_000_000)
  }

  /// RFC 3339 in UTC with microseconds: `2026-11-28T10:58:03.123456Z`.
  public func rfc3339(ofMonotonic ns: UInt64) -> String {
    let (seconds, nanos) = wallTime(ofMonotonic: ns)
    var t = time_t(seconds)
    var parts = tm()
    gmtime_r(&t, &parts)
    return digits(Int(parts.tm_year) + 1900, 4) + "-" + digits(Int(parts.tm_mon) + 1, 2) + "-"
      + digits(Int(parts.tm_mday), 2) + "T" + digits(Int(parts.tm_hour), 2) + ":"
      + digits(Int(parts.tm_min), 2) + ":" + digits(Int(parts.tm_sec), 2) + "."
      + digits(Int(nanos / 1000), 6) + "Z"
  }

  /// Local `HH:MM:SS`, as bcc tools print it.
  public func clockTime(ofMonotonic ns: UInt64) -> String {
    var t = time_t(wallTime(ofMonotonic: ns).seconds)
    var parts = tm()
    localtime_r(&t, &parts)
    return digits(Int(parts.tm_hour), 2) + ":" + digits(Int(parts.tm_min), 2) + ":"
      + digits(Int(parts.tm_sec), 2)
  }
}

func digits(_ value: Int, _ width: Int) -> String {
  let s = String(value)
  return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
}

/// Human-readable durations: `850ns`, `12.3us`, `301.2ms`, `3.01s`, `5m02s`, `2h03m`.
public func formatDuration(nanoseconds ns: UInt64) -> String {
  func fixed(_ value: UInt64, _ unit: UInt64, decimals: Int) -> String {
    var scale: UInt64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (value * scale + unit / 2) / unit
    return String(scaled / scale) + "." + digits(Int(scaled % scale), decimals)
  }
  switch ns {
  case ..<1_000: return "\(ns)ns"
  case ..<1_000_000: return fixed(ns, 1_000, decimals: 1) + "us"
  case ..<1_000_000_000: return fixed(ns, 1_000_000, decimals: 1) + "ms"
  case ..<60_000_000_000: return fixed(ns, 1_000_000_000, decimals: 2) + "s"
  case ..<3_600_000_000_000:
    let s = ns / 1_000_000_000
    return "\(s / 60)m" + digits(Int(s % 60), 2) + "s"
  default:
    let m = ns / 60_000_000_000
    return "\(m / 60)h" + digits(Int(m % 60), 2) + "m"
  }
}

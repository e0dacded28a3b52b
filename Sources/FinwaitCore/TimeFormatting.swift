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
}

/// The text of one wall-clock second, kept while records fall in that second:
/// gmtime_r/localtime_r once per second, not once per record.
public struct SecondText: Sendable {
  public enum Kind: Sendable {
    /// Local `HH:MM:SS`, as bcc tools print it.
    case localTimeOfDay
    /// UTC `2026-11-28T10:58:03`: RFC 3339 up to the seconds.
    case utcDateTime
  }

  public let kind: Kind
  private var second: Int64 = .min
  private var text = LineBuffer(capacity: 20)

  public init(_ kind: Kind) {
    self.kind = kind
  }

  mutating func text(of second: Int64) -> LineBuffer {
    guard second != self.second else { return text }
    var t = time_t(second)
    var parts = tm()
    text.clear()
    switch kind {
    case .localTimeOfDay:
      localtime_r(&t, &parts)
    case .utcDateTime:
      gmtime_r(&t, &parts)
      text.append(decimal: UInt64(Int(parts.tm_year) + 1900), minimumDigits: 4)
      text.append(ascii: "-")
      text.append(decimal: UInt64(parts.tm_mon + 1), minimumDigits: 2)
      text.append(ascii: "-")
      text.append(decimal: UInt64(parts.tm_mday), minimumDigits: 2)
      text.append(ascii: "T")
    }
    text.appendTimeOfDay(parts)
    self.second = second
    return text
  }
}

extension LineBuffer {
  /// RFC 3339 in UTC with microseconds: `2026-11-28T10:58:03.123456Z`.
  /// `cache` must be a `.utcDateTime` one.
  public mutating func append(rfc3339OfMonotonic ns: UInt64, clock: WallClock, cache: inout SecondText) {
    assert(cache.kind == .utcDateTime)
    let (seconds, nanos) = clock.wallTime(ofMonotonic: ns)
    append(cache.text(of: seconds))
    append(ascii: ".")
    append(decimal: UInt64(nanos / 1000), minimumDigits: 6)
    append(ascii: "Z")
  }

  /// Local `HH:MM:SS`, as bcc tools print it. `cache` must be a
  /// `.localTimeOfDay` one.
  public mutating func append(clockTimeOfMonotonic ns: UInt64, clock: WallClock, cache: inout SecondText) {
    assert(cache.kind == .localTimeOfDay)
    append(cache.text(of: clock.wallTime(ofMonotonic: ns).seconds))
  }

  mutating func appendTimeOfDay(_ t: tm) {
    append(decimal: UInt64(t.tm_hour), minimumDigits: 2)
    append(ascii: ":")
    append(decimal: UInt64(t.tm_min), minimumDigits: 2)
    append(ascii: ":")
    append(decimal: UInt64(t.tm_sec), minimumDigits: 2)
  }

  /// Human-readable durations: `850ns`, `12.3us`, `301.2ms`, `3.01s`, `5m02s`, `2h03m`.
  public mutating func append(duration ns: UInt64) {
    switch ns {
    case ..<1_000:
      append(decimal: ns)
      append("ns")
    case ..<1_000_000:
      append(fixed: ns, unit: 1_000, decimals: 1)
      append("us")
    case ..<1_000_000_000:
      append(fixed: ns, unit: 1_000_000, decimals: 1)
      append("ms")
    case ..<60_000_000_000:
      append(fixed: ns, unit: 1_000_000_000, decimals: 2)
      append("s")
    case ..<3_600_000_000_000:
      let s = ns / 1_000_000_000
      append(decimal: s / 60)
      append("m")
      append(decimal: s % 60, minimumDigits: 2)
      append("s")
    default:
      let m = ns / 60_000_000_000
      append(decimal: m / 60)
      append("h")
      append(decimal: m % 60, minimumDigits: 2)
      append("m")
    }
  }

  private mutating func append(fixed value: UInt64, unit: UInt64, decimals: Int) {
    var scale: UInt64 = 1
    for _ in 0..<decimals { scale *= 10 }
    let scaled = (value * scale + unit / 2) / unit
    append(decimal: scaled / scale)
    append(ascii: ".")
    append(decimal: scaled % scale, minimumDigits: decimals)
  }
}

/// Human-readable durations: `850ns`, `12.3us`, `301.2ms`, `3.01s`, `5m02s`, `2h03m`.
public func formatDuration(nanoseconds ns: UInt64) -> String {
  var line = LineBuffer(capacity: 16)
  line.append(duration: ns)
  return line.text
}

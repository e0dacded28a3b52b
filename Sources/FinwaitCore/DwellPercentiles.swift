import Histogram

/// Streaming percentiles of FIN_WAIT2 dwell (HdrHistogram): constant memory,
/// no allocation per value, values kept to 1% (two significant digits),
/// which is finer than any dwell decision needs.
public struct DwellPercentiles: Sendable {
  /// Microseconds, up to about 12.7 days; longer dwells count as that.
  private static let highest: UInt64 = 1 << 40
  private var histogram = Histogram<UInt64>(highestTrackableValue: highest, numberOfSignificantValueDigits: .two)

  public init() {}

  public var count: UInt64 { histogram.totalCount }

  public mutating func record(microseconds: UInt64) {
    _ = histogram.record(min(microseconds, Self.highest))
  }

  /// The percentiles a summary shows: p50, p90, p99, p99.9 and the maximum.
  public static let shown: [(label: String, key: String, percentile: Double)] = [
    ("p50", "p50", 50), ("p90", "p90", 90), ("p99", "p99", 99), ("p99.9", "p99_9", 99.9), ("max", "max", 100),
  ]

  /// Microseconds at `percentile` (0...100), as the highest value of its
  /// bucket: a percentile is never reported below what was measured. The
  /// maximum (100) is the exact largest value.
  public func microseconds(at percentile: Double) -> UInt64 {
    percentile >= 100 ? histogram.maxRecorded : histogram.valueAtPercentile(percentile)
  }

  /// The same values in power-of-two buckets, as bcc prints them. Exact,
  /// not approximated: at two significant digits every HdrHistogram bucket
  /// above 255 spans exactly one power of two, and below it holds one value.
  public var log2: Log2Histogram {
    var counts: [UInt64] = []
    for i in 0...Int(Self.highest.trailingZeroBitCount) {
      let low: UInt64 = i == 0 ? 0 : 1 << UInt64(i)
      let high: UInt64 = i == 0 ? 1 : (1 << UInt64(i + 1)) - 1
      counts.append(histogram.count(within: low...min(high, Self.highest)))
    }
    return Log2Histogram(buckets: counts)
  }

  public mutating func add(_ other: DwellPercentiles) {
    histogram.add(other.histogram)
  }
}

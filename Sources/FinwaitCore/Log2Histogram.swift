/// Power-of-two buckets, printed like bcc's `print_log2_hist`: bucket 0
/// holds 0 and 1, bucket i holds [2^i, 2^(i+1)).
public struct Log2Histogram: Sendable, Equatable {
  public static let bucketCount = 64
  public private(set) var buckets = [UInt64](repeating: 0, count: Log2Histogram.bucketCount)
  public private(set) var total: UInt64 = 0

  public init() {}

  /// From counts per bucket (bucket 0 first).
  init(buckets counts: [UInt64]) {
    add(buckets: counts)
  }

  public static func bucket(of value: UInt64) -> Int {
    value <= 1 ? 0 : 63 - value.leadingZeroBitCount
  }

  /// Adds counts per bucket (the kernel's histogram slots use the same buckets).
  public mutating func add(buckets counts: some Collection<UInt64>) {
    for (i, count) in counts.prefix(Self.bucketCount).enumerated() {
      buckets[i] += count
      total += count
    }
  }

  public mutating func record(_ value: UInt64) {
    buckets[Self.bucket(of: value)] += 1
    total += 1
  }

  /// bcc-style rows from bucket 0 to the highest non-empty one, with bars
  /// scaled to the largest count.
  public func render(unit: String, barWidth: Int = 40) -> [String] {
    guard let first = buckets.firstIndex(where: { $0 > 0 }),
      let last = buckets.lastIndex(where: { $0 > 0 })
    else { return [] }
    let peak = buckets.max() ?? 1
    var lines = [pad(unit, left: 14) + String(repeating: " ", count: 10) + " : count    distribution"]
    // Leading empty buckets are left out: dwells span ns to hours.
    for i in first...last {
      let low: UInt64 = i == 0 ? 0 : 1 << UInt64(i)
      let high: UInt64 = i == 0 ? 1 : (1 << UInt64(i + 1)) - 1
      let stars = Int((buckets[i] * UInt64(barWidth) + peak - 1) / peak)
      let bar = String(repeating: "*", count: buckets[i] == 0 ? 0 : max(1, stars))
      lines.append(
        pad(String(low), left: 10) + " -> " + pad(String(high), right: 10) + " : "
          + pad(String(buckets[i]), right: 8) + " |" + pad(bar, right: barWidth) + "|")
    }
    return lines
  }
}

func pad(_ s: String, left width: Int) -> String {
  s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}

func pad(_ s: String, right width: Int) -> String {
  s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
}

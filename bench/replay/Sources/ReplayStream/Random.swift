#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64: a fixed seed gives the same stream on every run and machine,
/// so results differ only by the code under test.
struct SplitMix64 {
  private var state: UInt64

  init(seed: UInt64) {
    state = seed
  }

  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }

  /// Uniform in 0..<n.
  mutating func below(_ n: Int) -> Int {
    Int(next() % UInt64(n))
  }

  /// Uniform in [0, 1).
  mutating func unit() -> Double {
    Double(next() >> 11) / Double(1 << 53)
  }

  /// Uniform in [low, high].
  mutating func uniform(_ low: Int64, _ high: Int64) -> Int64 {
    low + Int64(next() % UInt64(high - low + 1))
  }

  /// Log-uniform in [low, high]: dwells span microseconds to minutes.
  mutating func logUniform(_ low: Int64, _ high: Int64) -> Int64 {
    let l = log2(Double(low))
    let h = log2(Double(high))
    return Int64(exp2(l + (h - l) * unit()))
  }
}

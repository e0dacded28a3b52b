/// Parses command-line durations: `250ms`, `1.5s`, `2m`, `1h`, `800us`,
/// `500ns`; a bare number is seconds. Returns nanoseconds.
public func parseDuration(_ text: String) -> UInt64? {
  let units: [(suffix: String, ns: Double)] = [
    ("ns", 1), ("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9),
  ]
  let trimmed = text.lowercased()
  var number = Substring(trimmed)
  var scale = 1e9
  // Longest suffix first, so "ms" is not read as "s".
  for unit in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where trimmed.hasSuffix(unit.suffix) {
    number = trimmed.dropLast(unit.suffix.count)
    scale = unit.ns
    break
  }
  guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }),
    let value = Double(number), value.isFinite, value >= 0, value * scale < 1.8e19
  else { return nil }
  return UInt64((value * scale).rounded())
}

/// Parses command-line durations: `250ms`, `1.5s`, `2m`, `1h`, `800us`,
/// `500ns`; a bare number is seconds. Returns nanoseconds, rounded half up;
/// nil for anything else or for more than UInt64 holds.
public func parseDuration(_ text: String) -> UInt64? {
  // Each unit is factor * 10^shift ns. Moving the decimal point `shift`
  // digits and multiplying by a small factor is exact, where floating point
  // loses nanoseconds above 2^53. Two-letter suffixes come first so "ms" is
  // not read as "s".
  let units: [(suffix: [UInt8], factor: UInt64, shift: Int)] = [
    (Array("ns".utf8), 1, 0), (Array("us".utf8), 1, 3), (Array("ms".utf8), 1, 6),
    (Array("s".utf8), 1, 9), (Array("m".utf8), 6, 10), (Array("h".utf8), 36, 11),
  ]
  let bytes = text.utf8.map { (65...90).contains($0) ? $0 | 0x20 : $0 }
  var number = bytes[...]
  var factor: UInt64 = 1
  var shift = 9
  for unit in units where bytes.suffix(unit.suffix.count).elementsEqual(unit.suffix) {
    number = bytes.dropLast(unit.suffix.count)
    factor = unit.factor
    shift = unit.shift
    break
  }
  let dot = UInt8(ascii: ".")
  let whole = number.prefix(while: isASCIIDigit)
  var fraction = number[whole.endIndex...]
  if fraction.first == dot { fraction = fraction.dropFirst() } else if !fraction.isEmpty { return nil }
  guard fraction.allSatisfy(isASCIIDigit), !(whole.isEmpty && fraction.isEmpty) else { return nil }

  // The whole part and the first `shift` fraction digits count units of
  // `factor` ns (none at all: ".5ns" is 0 of them)...
  let shifted = Array(whole) + Array(fraction.prefix(shift))
    + [UInt8](repeating: 48, count: max(0, shift - fraction.count))
  guard let scaled: UInt64 = shifted.isEmpty ? 0 : asciiDecimal(shifted) else { return nil }
  // ...and the digits after them are a fraction of one such unit. Rounding
  // factor * 0.rest half up is floor(2 * factor * 0.rest + 1) / 2, and the
  // integer part of 2 * factor * 0.rest is the carry of a long multiplication.
  var carry: UInt64 = 0
  for digit in fraction.dropFirst(shift).reversed() {
    carry = (UInt64(digit - 48) * 2 * factor + carry) / 10
  }
  let (ns, o1) = scaled.multipliedReportingOverflow(by: factor)
  let (rounded, o2) = ns.addingReportingOverflow((carry + 1) / 2)
  return o1 || o2 ? nil : rounded
}

import FinwaitCore
import PropertyBased
import Testing

/// What each suffix means, in nanoseconds; "" is a bare number (seconds).
private let units: [(suffix: String, ns: UInt64)] = [
  ("ns", 1), ("us", 1_000), ("ms", 1_000_000), ("s", 1_000_000_000), ("", 1_000_000_000),
  ("m", 60_000_000_000), ("h", 3_600_000_000_000),
]

private func powerOf10(_ n: Int) -> UInt64 { (0..<n).reduce(1) { r, _ in r * 10 } }

/// `whole.fraction` (the fraction written with `digits` digits) times
/// `scale`, rounded half up, in 128-bit arithmetic: an oracle that shares no
/// code with the parser. nil when it does not fit in UInt64.
private func exactNanoseconds(whole: UInt64, fraction: UInt64, digits: Int, scale: UInt64) -> UInt64? {
  let denominator = powerOf10(digits)
  let numerator = whole * denominator + fraction
  let product = numerator.multipliedFullWidth(by: scale)
  guard product.high < denominator else { return nil }
  let (quotient, remainder) = denominator.dividingFullWidth(product)
  guard remainder >= denominator - remainder else { return quotient }
  let (rounded, overflow) = quotient.addingReportingOverflow(1)
  return overflow ? nil : rounded
}

/// Upper-cases some letters of the suffix: units are case-insensitive.
private func randomCase(_ s: String, _ rng: inout any SeededRandomNumberGenerator) -> String {
  String(s.map { Bool.random(using: &rng) ? Character($0.uppercased()) : $0 })
}

private struct IntegerDuration: Sendable, CustomStringConvertible {
  var text: String
  var count: UInt64
  var scale: UInt64
  var description: String { "\"\(text)\"" }
}

private struct DecimalDuration: Sendable, CustomStringConvertible {
  var text: String
  var whole: UInt64
  var fraction: UInt64
  var digits: Int
  var scale: UInt64
  var description: String { "\"\(text)\"" }
}

@Suite struct DurationPropertyTests {
  @Test func integersParseToCountTimesUnitOrNilWhenTooLarge() async {
    let input = Generator { rng -> IntegerDuration in
      let unit = units.randomElement(using: &rng) ?? units[0]
      let count = anyWidth(UInt64.self).run(using: &rng)
      return IntegerDuration(text: "\(count)" + randomCase(unit.suffix, &rng), count: count, scale: unit.ns)
    }
    await propertyCheck(count: 1_000, input: input) { d in
      let (ns, overflow) = d.count.multipliedReportingOverflow(by: d.scale)
      #expect(parseDuration(d.text) == (overflow ? nil : ns))
    }
  }

  @Test func decimalsParseExactlyRoundedHalfUp() async {
    let input = Generator { rng -> DecimalDuration in
      let unit = units.randomElement(using: &rng) ?? units[0]
      let digits = Int.random(in: 0...12, using: &rng)
      let whole = UInt64.random(in: 0...1_000_000, using: &rng) >> UInt64.random(in: 0...20, using: &rng)
      let fraction = UInt64.random(in: 0..<powerOf10(digits), using: &rng)
      var fractionText = digits == 0 ? "" : String(fraction)
      fractionText = String(repeating: "0", count: digits - fractionText.count) + fractionText
      // "1.", ".5" and "0.5" are all numbers; "." alone is not, so keep a digit.
      let wholeText = whole == 0 && digits > 0 && Bool.random(using: &rng) ? "" : String(whole)
      let text = wholeText + "." + fractionText + randomCase(unit.suffix, &rng)
      return DecimalDuration(text: text, whole: whole, fraction: fraction, digits: digits, scale: unit.ns)
    }
    await propertyCheck(count: 1_000, input: input) { d in
      let expected = exactNanoseconds(whole: d.whole, fraction: d.fraction, digits: d.digits, scale: d.scale)
      #expect(parseDuration(d.text) == expected)
      // Trailing zeros do not change a decimal, however many there are.
      let padded = d.text.insertingBeforeUnit(String(repeating: "0", count: 40))
      #expect(parseDuration(padded) == expected, "\(padded)")
    }
  }

  @Test func garbageIsRejectedOrParsedToItsExactValue() async {
    let hints = ["ns", "us", "ms", "s", "m", "h", "MS", "S", ".", "1", "25", "0", "000", "1e3", "inf", "nan", "0x1p3", "-", " "]
    let strings = garbageText(hints: hints, pieces: 0...6)
    // Number, optional fraction, optional unit: the grammar the parser must
    // accept and nothing else, matched per Unicode scalar so no look-alike
    // digit or combining mark passes for ASCII.
    let grammar = #/([0-9]*)(?:\.([0-9]*))?([nN][sS]|[uU][sS]|[mM][sS]|[sS]|[mM]|[hH])?/#
      .matchingSemantics(.unicodeScalar)
    await propertyCheck(count: 3_000, input: strings) { text in
      let parsed = parseDuration(text)
      guard let match = try? grammar.wholeMatch(in: text),
        !(match.1.isEmpty && (match.2 ?? "").isEmpty)
      else {
        #expect(parsed == nil, "\(text.debugDescription)")
        return
      }
      let suffix = (match.3 ?? "").lowercased()
      let scale = units.first { $0.suffix == suffix }?.ns ?? 0
      let wholeDigits = match.1.drop { $0 == "0" }
      let fractionDigits = String(match.2 ?? "").reversed().drop { $0 == "0" }.reversed()
      // Beyond what the oracle's arithmetic holds, only check it is not a crash.
      guard wholeDigits.count <= 6, fractionDigits.count <= 12 else { return }
      let expected = exactNanoseconds(
        whole: UInt64(wholeDigits) ?? 0, fraction: UInt64(String(fractionDigits)) ?? 0,
        digits: fractionDigits.count, scale: scale)
      #expect(parsed == expected, "\(text.debugDescription)")
    }
  }
}

extension String {
  /// Inserts `zeros` just before the unit suffix of a decimal duration.
  fileprivate func insertingBeforeUnit(_ zeros: String) -> String {
    let letters = reversed().prefix { $0.isLetter }.count
    return String(dropLast(letters)) + zeros + String(suffix(letters))
  }
}

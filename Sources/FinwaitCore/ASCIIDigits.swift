/// Digits of text that comes from outside (procfs, sysctl, flags), read as
/// bytes: unlike `Int(String)`, no sign, no non-ASCII digits, no Character
/// folding ("\r\n" is one Character).
package func isASCIIDigit(_ b: UInt8) -> Bool { (48...57).contains(b) }

package func isASCIIHexDigit(_ b: UInt8) -> Bool { isASCIIDigit(b) || (97...102).contains(b | 0x20) }

package func hexValue(_ b: UInt8) -> UInt8 { isASCIIDigit(b) ? b - 48 : (b | 0x20) - 87 }

/// Decimal ASCII digits as a number; nil if empty, not all digits, or too
/// large for `T`.
package func asciiDecimal<T: FixedWidthInteger>(_ digits: some Collection<UInt8>) -> T? {
  guard !digits.isEmpty else { return nil }
  var value: T = 0
  for b in digits {
    guard isASCIIDigit(b) else { return nil }
    let (times10, o1) = value.multipliedReportingOverflow(by: 10)
    let (sum, o2) = times10.addingReportingOverflow(T(b - 48))
    if o1 || o2 { return nil }
    value = sum
  }
  return value
}

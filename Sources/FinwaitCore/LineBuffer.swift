/// One output line built as UTF-8 bytes in a buffer that is reused from line
/// to line: once it has grown, formatting a record allocates nothing. (Building
/// lines as Swift Strings cost a dozen allocations per record and was most of
/// finwait's CPU under churn.)
public struct LineBuffer: Sendable {
  public private(set) var bytes: [UInt8] = []

  public init(capacity: Int = 512) {
    bytes.reserveCapacity(capacity)
  }

  public var count: Int { bytes.count }
  public var last: UInt8? { bytes.last }

  /// Empties the buffer and keeps its storage.
  public mutating func clear() {
    bytes.removeAll(keepingCapacity: true)
  }

  /// The line as a String (tests, and the rare lines that are not hot).
  public var text: String { String(decoding: bytes, as: UTF8.self) }

  public mutating func append(_ s: StaticString) {
    s.withUTF8Buffer { bytes.append(contentsOf: $0) }
  }

  public mutating func append(_ s: String) {
    var s = s
    s.withUTF8 { bytes.append(contentsOf: $0) }
  }

  public mutating func append(_ other: LineBuffer) {
    bytes.append(contentsOf: other.bytes)
  }

  public mutating func append(ascii: Unicode.Scalar) {
    bytes.append(UInt8(ascii: ascii))
  }

  public mutating func append(byte: UInt8) {
    bytes.append(byte)
  }

  /// Decimal digits, zero-padded to at least `minimumDigits`.
  public mutating func append(decimal value: UInt64, minimumDigits: Int = 1) {
    var digits = 1
    var rest = value
    while rest >= 10 {
      rest /= 10
      digits += 1
    }
    let width = max(digits, minimumDigits)
    bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width))
    var i = bytes.count - 1
    rest = value
    while rest > 0 {
      bytes[i] = UInt8(ascii: "0") + UInt8(rest % 10)
      rest /= 10
      i -= 1
    }
  }

  public mutating func append(decimal value: Int64) {
    if value < 0 { append(ascii: "-") }
    append(decimal: value.magnitude)
  }

  /// Lower-case hex digits without leading zeros.
  public mutating func append(hex value: UInt64) {
    let digits = max(1, (64 - value.leadingZeroBitCount + 3) / 4)
    for shift in stride(from: (digits - 1) * 4, through: 0, by: -4) {
      let nibble = UInt8(truncatingIfNeeded: value >> UInt64(shift)) & 0xf
      bytes.append(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
    }
  }

  /// Spaces until the field that began at `start` is `width` bytes wide; a
  /// longer field is left as it is.
  public mutating func pad(from start: Int, to width: Int) {
    let short = width - (bytes.count - start)
    if short > 0 { bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: short)) }
  }
}

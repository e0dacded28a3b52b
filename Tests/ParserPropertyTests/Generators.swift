import PropertyBased

/// Text as it could come out of a broken or hostile /proc: ASCII including
/// controls, bytes that are not UTF-8, large and signed numbers, look-alike
/// digits and combining marks, with `hints` (what the parser looks for)
/// spliced in so that much of it comes close to valid.
func garbageText(hints: [String], pieces: ClosedRange<Int> = 0...12) -> Generator<String, Shrink.None<String>> {
  let tricky = [
    "\r\n", "\r", "\n", "\t", " ", "\0", "\u{301}", "\u{660}", "\u{FF15}", "\u{BD}", "\u{17F}", "\u{212A}",
    "+", "-", ".", ":", "[", "]", "0", "00", "9", "\u{FEFF}", "\u{1F600}",
  ]
  return Generator { rng in
    var text = ""
    for _ in 0..<Int.random(in: pieces, using: &rng) {
      switch Int.random(in: 0..<6, using: &rng) {
      case 0, 1:
        text += hints.randomElement(using: &rng) ?? ""
      case 2:
        text += tricky.randomElement(using: &rng) ?? ""
      case 3:
        text.unicodeScalars.append(Unicode.Scalar(UInt8.random(in: 0...127, using: &rng)))
      case 4:
        let bytes = (0..<Int.random(in: 1...4, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        text += String(decoding: bytes, as: UTF8.self)
      default:
        let magnitude = UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng)
        text += Bool.random(using: &rng) ? String(magnitude) : String(magnitude, radix: 16)
      }
    }
    return text
  }
}

/// `valid` with up to three random edits (a character inserted, deleted or
/// replaced): inputs one typo away from well-formed.
func mutated(_ valid: Generator<String, some Sequence>) -> Generator<String, Shrink.None<String>> {
  let alphabet: [Character] = ["0", "1", "9", "a", "f", "x", "-", "+", " ", "\n", "\r", "\t", "[", "]", ":", ".", "\u{301}", "\u{660}"]
  return Generator { rng in
    var characters = Array(valid.run(using: &rng))
    for _ in 0..<Int.random(in: 1...3, using: &rng) {
      let at = Int.random(in: 0...characters.count, using: &rng)
      let c = alphabet.randomElement(using: &rng) ?? "0"
      switch Int.random(in: 0..<3, using: &rng) {
      case 0: characters.insert(c, at: at)
      case 1 where at < characters.count: characters.remove(at: at)
      default: if at < characters.count { characters[at] = c } else { characters.append(c) }
      }
    }
    return String(characters)
  }
}

/// A random integer whose size is spread over every bit width, so small and
/// boundary values come up as often as huge ones.
func anyWidth<T: FixedWidthInteger & UnsignedInteger & SendableMetatype>(_: T.Type = T.self) -> Generator<T, Shrink.None<T>> {
  Generator { rng in
    let value = T.random(in: T.min...T.max, using: &rng)
    return value >> T(Int.random(in: 0..<T.bitWidth, using: &rng))
  }
}

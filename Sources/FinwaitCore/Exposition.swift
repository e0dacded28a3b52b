/// The two exposition formats `/metrics` serves. swift-prometheus writes the
/// Prometheus text format; OpenMetrics differs in three ways that matter
/// here: a counter family's name has no `_total` (its samples keep it), the
/// content type, and a closing `# EOF`.
public enum Exposition {
  public static let textContentType = "text/plain; version=0.0.4; charset=utf-8"
  public static let openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"

  /// True when the Accept header lists OpenMetrics with a quality at least
  /// that of the text format (Prometheus lists it first).
  public static func prefersOpenMetrics(accept: String?) -> Bool {
    guard let accept else { return false }
    var openMetrics = -1.0
    var text = -1.0
    for item in accept.split(separator: ",") {
      let parts = item.split(separator: ";").map { $0.trimmingSpaces }
      guard let type = parts.first?.lowercased() else { continue }
      var quality = 1.0
      for parameter in parts.dropFirst() where parameter.hasPrefix("q=") {
        quality = Double(parameter.dropFirst(2)) ?? 0
      }
      switch type {
      case "application/openmetrics-text": openMetrics = max(openMetrics, quality)
      case "text/plain": text = max(text, quality)
      default: break
      }
    }
    return openMetrics > 0 && openMetrics >= text
  }

  /// Prometheus text (as swift-prometheus writes it) to OpenMetrics 1.0.
  public static func openMetrics(fromText text: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(text.count + 16)
    var counters = Set<Substring>()
    let lines = text.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
    // TYPE lines first: a HELP line comes before its TYPE line.
    for line in lines {
      let words = String(decoding: line, as: UTF8.self).split(separator: " ", maxSplits: 3)
      if words.count == 4, words[0] == "#", words[1] == "TYPE", words[3] == "counter" { counters.insert(words[2]) }
    }
    for line in lines {
      var text = String(decoding: line, as: UTF8.self)
      if text.hasPrefix("# HELP ") || text.hasPrefix("# TYPE ") {
        let words = text.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        if words.count >= 3, counters.contains(words[2]), words[2].hasSuffix("_total") {
          var renamed = words
          renamed[2] = words[2].dropLast("_total".count)
          text = renamed.joined(separator: " ")
        }
      }
      out += text.utf8
      out.append(UInt8(ascii: "\n"))
    }
    out += "# EOF\n".utf8
    return out
  }
}

extension Substring {
  var trimmingSpaces: Substring {
    var s = self
    while s.first == " " || s.first == "\t" { s = s.dropFirst() }
    while s.last == " " || s.last == "\t" { s = s.dropLast() }
    return s
  }
}

/// logfmt (`key=value key2="with spaces"`), the line format of `finwait
/// serve`'s log: one line per event, parsed by Loki, Vector and Fluent Bit.
public enum Logfmt {
  public static func line(_ fields: [(String, String)]) -> String {
    var line = ""
    for (key, value) in fields {
      if !line.isEmpty { line += " " }
      line += key
      line += "="
      line += quoted(value)
    }
    return line
  }

  static func quoted(_ value: String) -> String {
    let plain = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "\\") && $0 < 0x7f }
    if plain { return value }
    var out = "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      case "\r": out += "\\r"
      default: out.unicodeScalars.append(scalar)
      }
    }
    return out + "\""
  }
}

/// Pure parsers of what /proc, sysctl and procfs status files say: the
/// text comes in, values come out, so each is tested (and property-tested)
/// without root or a real /proc.
public enum ProcText {
  /// `5.15.0-91-generic` -> (5, 15); nil unless it starts with ASCII digits,
  /// a dot and ASCII digits. Splitting at any non-digit would read "5.x.15"
  /// or "5-15" as 5.15.
  public static func kernelVersion(ofRelease release: String) -> (major: Int, minor: Int)? {
    let bytes = release.utf8
    let major = bytes.prefix(while: isASCIIDigit)
    let rest = bytes[major.endIndex...]
    guard rest.first == UInt8(ascii: "."), let majorValue: Int = asciiDecimal(major),
      let minorValue: Int = asciiDecimal(rest.dropFirst().prefix(while: isASCIIDigit))
    else { return nil }
    return (majorValue, minorValue)
  }

  /// The first `CapEff:` line's hex mask (the kernel prints `CapEff:\t%016llx`);
  /// nil if there is none or it is not 1 to 16 hex digits.
  public static func capabilities(fromStatus status: String) -> UInt64? {
    // Bytes, not Characters: "\r\n" is one Character and would hide a line break.
    let key = Array("CapEff:".utf8)
    for line in status.utf8.split(separator: UInt8(ascii: "\n")) where line.starts(with: key) {
      let value = line.dropFirst(key.count).drop(while: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") })
      guard (1...16).contains(value.count), value.allSatisfy(isASCIIHexDigit) else { return nil }
      return value.reduce(0) { $0 << 4 | UInt64(hexValue($1)) }
    }
    return nil
  }

  /// Whether /proc/PID/status says its process is in the initial pid
  /// namespace: an `NSpid:` line with one number (one per nested namespace,
  /// Linux 4.1+). Without the line, not known to be: false.
  public static func inInitialPIDNamespace(status: String) -> Bool {
    let key = Array("NSpid:".utf8)
    for line in status.utf8.split(separator: UInt8(ascii: "\n")) where line.starts(with: key) {
      let fields = line.dropFirst(key.count).split(whereSeparator: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") })
      return fields.count == 1 && fields[0].allSatisfy(isASCIIDigit)
    }
    return false
  }

  /// The number of open files on the node, the first of /proc/sys/fs/file-nr's
  /// three numbers (`320\t0\t2466097\n`); nil if it is not a number.
  public static func openFiles(fromFileNr text: String) -> Int? {
    let first = text.utf8.split(whereSeparator: { $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }).first
    return first.flatMap { asciiDecimal($0) }
  }

  /// `tcp_fin_timeout` as procfs prints it (`60\n`) -> 60. The kernel's value
  /// is a C int, so anything beyond Int32 is garbage. A negative value (the
  /// kernel floors it at 3.5 RTO) is no timeout that can be stated, so nil, as
  /// for anything but digits between optional whitespace.
  public static func finTimeoutSeconds(fromSysctl text: String) -> Int? {
    let isSpace = { (b: UInt8) in b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n") }
    let trimmed = text.utf8.drop(while: isSpace).reversed().drop(while: isSpace).reversed()
    guard let value: Int32 = asciiDecimal(trimmed) else { return nil }
    return Int(value)
  }

  /// `socket:[12345]` -> 12345, exactly as the kernel writes it (`%lu`): a
  /// sign or a leading zero is not a link the kernel made.
  public static func socketInode(fromLink link: String) -> UInt32? {
    var link = link
    return link.withUTF8 { socketInode(fromLink: UnsafeRawBufferPointer($0)) }
  }

  /// The same, on readlink's bytes: no String per descriptor.
  public static func socketInode(fromLink bytes: UnsafeRawBufferPointer) -> UInt32? {
    let prefix = "socket:[".utf8
    guard bytes.starts(with: prefix), bytes.last == UInt8(ascii: "]") else { return nil }
    let digits = bytes.dropFirst(prefix.count).dropLast()
    guard digits.first != UInt8(ascii: "0") || digits.count == 1 else { return nil }
    return asciiDecimal(digits)
  }

  /// /proc/PID/comm (`nginx\n`) -> `nginx`. The kernel writes the name and
  /// one newline, and a name set by prctl may itself hold "\n" or "\r", so
  /// only that last byte is dropped; without it the file is not the kernel's.
  public static func comm(fromProcFile text: String) -> String? {
    guard text.utf8.last == UInt8(ascii: "\n") else { return nil }
    return String(decoding: text.utf8.dropLast(), as: UTF8.self)
  }

  /// A /proc entry's name as a process id: `1234` -> 1234; nil for `self`,
  /// `sys` and anything else that is not how the kernel names a process
  /// (decimal above 0, no leading zero, within pid_t's range).
public static func processID(procEntry name: String) -> UInt32? {
    let digits = name.utf8
    guard digits.first != UInt8(ascii: "0"), let pid: Int32 = asciiDecimal(digits) else { return nil }
    return UInt32(pid)
  }
}

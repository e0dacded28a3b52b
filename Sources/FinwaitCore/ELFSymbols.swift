/// Function symbols of an ELF64 little-endian file (.symtab, else .dynsym),
/// by address, for naming user stack frames. Every offset and size read from
/// the file is checked against its length: a malformed file gives no symbols,
/// never a crash.
public struct ELFSymbols: Sendable {
  public struct Symbol: Sendable, Equatable {
    public var name: String
    public var address: UInt64
    public var size: UInt64
  }

  /// Sorted by address.
  public private(set) var symbols: [Symbol] = []
  /// PT_LOAD segments: (file offset, virtual address, file size), to turn a
  /// file offset from /proc/PID/maps into the address symbols use.
  public private(set) var segments: [(offset: UInt64, address: UInt64, size: UInt64)] = []

  public init?(_ bytes: [UInt8]) {
    func u16(_ at: Int) -> UInt16? { at + 2 <= bytes.count ? UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 : nil }
    func u32(_ at: Int) -> UInt32? {
      guard at + 4 <= bytes.count else { return nil }
      return (0..<4).reduce(0) { $0 | UInt32(bytes[at + $1]) << (8 * UInt32($1)) }
    }
    func u64(_ at: Int) -> UInt64? {
      guard at + 8 <= bytes.count else { return nil }
      return (0..<8).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }
    // "\x7fELF", 64-bit, little-endian.
    guard bytes.count >= 64, bytes[0] == 0x7f, bytes[1] == 0x45, bytes[2] == 0x4c, bytes[3] == 0x46,
      bytes[4] == 2, bytes[5] == 1,
      let phoff = u64(32), let shoff = u64(40), let phentsize = u16(54), let phnum = u16(56),
      let shentsize = u16(58), let shnum = u16(60), phentsize >= 56, shentsize >= 64
    else { return nil }

    for i in 0..<Int(phnum) {
      let at = Int(clamping: phoff) &+ i * Int(phentsize)
      guard at >= 0, let type = u32(at), let offset = u64(at + 8), let vaddr = u64(at + 16), let filesz = u64(at + 32)
      else { break }
      if type == 1 { segments.append((offset, vaddr, filesz)) }  // PT_LOAD
    }

    // Section headers: find SHT_SYMTAB (2), else SHT_DYNSYM (11), and their string tables.
    var sections: [(type: UInt32, offset: UInt64, size: UInt64, link: UInt32, entsize: UInt64)] = []
    for i in 0..<Int(shnum) {
      let at = Int(clamping: shoff) &+ i * Int(shentsize)
      guard at >= 0, let type = u32(at + 4), let offset = u64(at + 24), let size = u64(at + 32), let link = u32(at + 40),
        let entsize = u64(at + 56)
      else { break }
      sections.append((type, offset, size, link, entsize))
    }
    guard let table = sections.first(where: { $0.type == 2 }) ?? sections.first(where: { $0.type == 11 }),
      table.entsize >= 24, Int(table.link) < sections.count
    else { return nil }
    let strings = sections[Int(table.link)]
    func name(_ at: UInt32) -> String? {
      let start = Int(clamping: strings.offset) &+ Int(at)
      let limit = min(bytes.count, Int(clamping: strings.offset &+ strings.size))
      guard start >= 0, start < limit, let end = bytes[start..<limit].firstIndex(of: 0) else { return nil }
      return String(decoding: bytes[start..<end], as: UTF8.self)
    }
    let count = Int(clamping: table.size / table.entsize)
    for i in 0..<count {
      let at = Int(clamping: table.offset) &+ i * Int(clamping: table.entsize)
      guard at >= 0, let nameAt = u32(at), at + 24 <= bytes.count, let value = u64(at + 8), let size = u64(at + 16)
      else { break }
      let info = bytes[at + 4]
      // STT_FUNC (2) or STT_GNU_IFUNC (10), defined.
      guard info & 0xf == 2 || info & 0xf == 10, value != 0, let text = name(nameAt), !text.isEmpty else { continue }
      symbols.append(Symbol(name: text, address: value, size: size))
    }
    symbols.sort { $0.address < $1.address }
  }

  /// The address symbols use for `fileOffset` in the file (from a mapping's
  /// offset); nil if no loaded segment holds it.
  public func address(ofFileOffset fileOffset: UInt64) -> UInt64? {
    guard let s = segments.first(where: { fileOffset >= $0.offset && fileOffset < $0.offset &+ $0.size }) else { return nil }
    return fileOffset - s.offset + s.address
  }

  /// `name+0x1a` for the function holding `address`; nil outside every one
  /// (a symbol of size 0 holds only its own address).
  public func name(at address: UInt64) -> String? {
    var low = 0
    var high = symbols.count
    while low < high {
      let mid = (low + high) / 2
      if symbols[mid].address <= address { low = mid + 1 } else { high = mid }
    }
    guard low > 0 else { return nil }
    let s = symbols[low - 1]
    let offset = address - s.address
    guard offset < max(s.size, 1) else { return nil }
    return offset == 0 ? s.name : "\(s.name)+0x\(String(offset, radix: 16))"
  }
}

/// One line of /proc/PID/maps: `start-end perms offset dev inode path`.
public struct Mapping: Sendable, Equatable {
  public var start: UInt64
  public var end: UInt64
  public var offset: UInt64
  public var path: String

  /// Executable file mappings only (`r-xp ... /usr/lib/...`); nil for others.
  public init?(mapsLine line: Substring) {
    let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
    guard fields.count == 6, fields[1].contains("x") else { return nil }
    let range = fields[0].split(separator: "-")
    let path = fields[5].trimmingPrefixSpaces
    guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
      let offset = UInt64(fields[2], radix: 16), path.hasPrefix("/"), start < end
    else { return nil }
    self.start = start
    self.end = end
    self.offset = offset
    self.path = String(path)
  }

  public static func parse(_ maps: String) -> [Mapping] {
    maps.split(separator: "\n").compactMap { Mapping(mapsLine: $0) }
  }
}

extension Substring {
  fileprivate var trimmingPrefixSpaces: Substring { drop(while: { $0 == " " }) }
}

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

  /// Symbol and string tables larger than this are not read (no real one is).
  static let tableLimit = 256 << 20

  /// A whole file in memory (tests, small files).
  public init?(_ bytes: [UInt8]) {
    self.init(reading: sliceReader(bytes))
  }

  /// Reads only the headers and the two tables it needs through `read`
  /// (file offset, byte count -> exactly those bytes, or nil), so a large
  /// binary is never held whole.
  public init?(reading read: (UInt64, Int) -> [UInt8]?) {
    guard let layout = ELFLayout(reading: read) else { return nil }
    segments = layout.segments
    let sections = layout.sections
    // SHT_SYMTAB (2), else SHT_DYNSYM (11), and its string table.
    guard let symtab = sections.first(where: { $0.type == 2 }) ?? sections.first(where: { $0.type == 11 }),
      symtab.entsize >= 24, Int(symtab.link) < sections.count,
      let entries = ELFLayout.contents(of: symtab, limit: Self.tableLimit, read).map(LittleEndianBytes.init),
      let strings = ELFLayout.contents(of: sections[Int(symtab.link)], limit: Self.tableLimit, read)
    else { return nil }

    func name(_ at: UInt32) -> String? {
      let start = Int(at)
      guard start < strings.count, let end = strings[start...].firstIndex(of: 0) else { return nil }
      return String(decoding: strings[start..<end], as: UTF8.self)
    }
    let entsize = Int(symtab.entsize)
    for at in stride(from: 0, to: entries.bytes.count - entsize + 1, by: entsize) {
      guard let nameAt = entries.u32(at), let value = entries.u64(at + 8), let size = entries.u64(at + 16) else { break }
      let info = entries.bytes[at + 4]
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

  /// The function holding `address`; nil outside every one (a symbol of
  /// size 0 holds only its own address).
  public func symbol(containing address: UInt64) -> Symbol? {
    var low = 0
    var high = symbols.count
    while low < high {
      let mid = (low + high) / 2
      if symbols[mid].address <= address { low = mid + 1 } else { high = mid }
    }
    guard low > 0 else { return nil }
    let s = symbols[low - 1]
    return address - s.address < max(s.size, 1) ? s : nil
  }
}

/// An ELF64 little-endian file's program and section headers, read through
/// a reader (file offset, byte count -> exactly those bytes, or nil).
struct ELFLayout {
  struct Section {
    var name: String
    var type: UInt32
    var address: UInt64
    var offset: UInt64
    var size: UInt64
    var link: UInt32
    var entsize: UInt64
  }

  var segments: [(offset: UInt64, address: UInt64, size: UInt64)] = []
  /// The PT_LOAD segments mapped executable (PF_X).
  var executable: [(offset: UInt64, address: UInt64, size: UInt64)] = []
  /// PT_NOTE segments: (file offset, file size).
  var notes: [(offset: UInt64, size: UInt64)] = []
  var sections: [Section] = []

  /// `headersOnly`: the program headers, not the section headers (which a
  /// stripped file may lack).
  init?(reading read: (UInt64, Int) -> [UInt8]?, headersOnly: Bool = false) {
    // "\x7fELF", 64-bit, little-endian.
    guard let header = read(0, 64).map(LittleEndianBytes.init), header.bytes[0..<6] == [0x7f, 0x45, 0x4c, 0x46, 2, 1],
      let phoff = header.u64(32), let shoff = header.u64(40), let phentsize = header.u16(54).map(Int.init),
      let phnum = header.u16(56).map(Int.init), let shentsize = header.u16(58).map(Int.init),
      let shnum = header.u16(60).map(Int.init), let shstrndx = header.u16(62).map(Int.init),
      phentsize >= 56, shentsize >= 64
    else { return nil }

    if let table = read(phoff, phnum * phentsize).map(LittleEndianBytes.init) {
      for at in stride(from: 0, to: phnum * phentsize, by: phentsize) {
        guard let type = table.u32(at), let flags = table.u32(at + 4), let offset = table.u64(at + 8),
          let vaddr = table.u64(at + 16), let filesz = table.u64(at + 32)
        else { break }
        if type == 1 { segments.append((offset, vaddr, filesz)) }  // PT_LOAD
        if type == 1 && flags & 1 != 0 { executable.append((offset, vaddr, filesz)) }  // PF_X
        if type == 4 { notes.append((offset, filesz)) }  // PT_NOTE
      }
    }
    if headersOnly { return }

    guard let table = read(shoff, shnum * shentsize).map(LittleEndianBytes.init) else { return nil }
    var nameOffsets: [UInt32] = []
    for at in stride(from: 0, to: shnum * shentsize, by: shentsize) {
      guard let nameAt = table.u32(at), let type = table.u32(at + 4), let address = table.u64(at + 16),
        let offset = table.u64(at + 24), let size = table.u64(at + 32), let link = table.u32(at + 40),
        let entsize = table.u64(at + 56)
      else { break }
      nameOffsets.append(nameAt)
      sections.append(Section(name: "", type: type, address: address, offset: offset, size: size, link: link,
                              entsize: entsize))
    }
    if shstrndx < sections.count, let names = Self.contents(of: sections[shstrndx], limit: 1 << 20, read) {
      for i in sections.indices {
        let start = Int(nameOffsets[i])
        guard start < names.count, let end = names[start...].firstIndex(of: 0) else { continue }
        sections[i].name = String(decoding: names[start..<end], as: UTF8.self)
      }
    }
  }

  /// A section's bytes; nil past `limit` or unreadable (SHT_NOBITS has none).
  static func contents(of section: Section, limit: Int, _ read: (UInt64, Int) -> [UInt8]?) -> [UInt8]? {
    guard section.type != 8, section.size <= UInt64(limit) else { return nil }
    return read(section.offset, Int(section.size))
  }
}

/// Bounds-checked little-endian reads: out of range is nil, never a trap.
/// `end` (at most the array's length) bounds the reads.
struct LittleEndianBytes {
  let bytes: [UInt8]
  let end: Int

  init(_ bytes: [UInt8]) { self.init(bytes, end: bytes.count) }

  init(_ bytes: [UInt8], end: Int) {
    self.bytes = bytes
    self.end = min(end, bytes.count)
  }

  func u16(_ at: Int) -> UInt16? { uint(at, 2).map { UInt16(truncatingIfNeeded: $0) } }
  func u32(_ at: Int) -> UInt32? { uint(at, 4).map { UInt32(truncatingIfNeeded: $0) } }
  func u64(_ at: Int) -> UInt64? { uint(at, 8) }

  func uint(_ at: Int, _ size: Int) -> UInt64? {
    guard at >= 0, at <= end - size else { return nil }
    var value: UInt64 = 0
    for i in 0..<size { value |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
    return value
  }
}

/// Reads from an array held whole: exactly `count` bytes at `offset`, or nil.
func sliceReader(_ bytes: [UInt8]) -> (UInt64, Int) -> [UInt8]? {
  { offset, count in
    guard offset <= UInt64(bytes.count), count >= 0, count <= bytes.count - Int(offset) else { return nil }
    return Array(bytes[Int(offset)..<Int(offset) + count])
  }
}

/// What places a file's code without its process: its GNU build id (the
/// kernel's name for a file in a stack, `bpf_get_stack(BPF_F_USER_BUILD_ID)`)
/// and its executable segments. Read from the program headers and their
/// notes, as the kernel reads the build id, so stripped files have both.
public struct ELFCode: Sendable, Equatable {
  public struct Segment: Sendable, Equatable {
    public var offset: UInt64
    /// Its virtual address in the file (p_vaddr).
    public var address: UInt64
    public var size: UInt64
    public init(offset: UInt64, address: UInt64, size: UInt64) {
      self.offset = offset
      self.address = address
      self.size = size
    }
  }

  /// As the kernel gives it in a stack (`StackOrigin.Frame.buildID`): the
  /// first 20 bytes, a shorter id zero-padded.
  public var buildID: [UInt8]
  public var executable: [Segment]

  public init(buildID: [UInt8], executable: [Segment]) {
    self.buildID = buildID
    self.executable = executable
  }

  /// Notes read per segment at most (build ids are in the first few).
  static let noteLimit = 64 << 10

  /// A whole file in memory (tests).
  public init?(bytes: [UInt8]) {
    self.init(reading: sliceReader(bytes))
  }

  /// nil: not ELF64 little-endian, or no NT_GNU_BUILD_ID note.
  public init?(reading read: (UInt64, Int) -> [UInt8]?) {
    guard let layout = ELFLayout(reading: read, headersOnly: true) else { return nil }
    var found: [UInt8]?
    for note in layout.notes where found == nil {
      guard note.size <= UInt64(Self.noteLimit), let bytes = read(note.offset, Int(note.size)) else { continue }
      found = Self.buildID(inNotes: LittleEndianBytes(bytes))
    }
    guard let found else { return nil }
    buildID = Array((found + [UInt8](repeating: 0, count: 20)).prefix(20))
    executable = layout.executable.map { Segment(offset: $0.offset, address: $0.address, size: $0.size) }
  }

  /// The desc of the first NT_GNU_BUILD_ID (3) note named "GNU".
  static func buildID(inNotes notes: LittleEndianBytes) -> [UInt8]? {
    func aligned(_ n: Int) -> Int { (n + 3) & ~3 }
    var at = 0
    while let namesz = notes.u32(at).map(Int.init), let descsz = notes.u32(at + 4).map(Int.init),
      let type = notes.u32(at + 8)
    {
      let name = at + 12
      let desc = name + aligned(namesz)
      guard namesz <= notes.end, descsz <= notes.end, desc + descsz <= notes.end else { return nil }
      if type == 3, namesz == 4, notes.bytes[name..<name + 4] == [0x47, 0x4e, 0x55, 0], descsz > 0 {
        return Array(notes.bytes[desc..<desc + descsz])
      }
      at = desc + aligned(descsz)
    }
    return nil
  }
}

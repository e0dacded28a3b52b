/// Where a function's frame begins (its CFA) at a given address, from the
/// file's `.eh_frame` call-frame information: for the innermost frame of a
/// captured stack, it says where on the stack the return address is. Only
/// the CFA rule is followed; registers' rules are skipped. Every read is
/// bounds-checked: malformed input gives nil, never a trap.
public struct EHFrame: Sendable {
  public enum CFA: Sendable, Equatable {
    /// CFA = rsp + offset: the return address is at rsp + offset - 8.
    case stackPointer(Int64)
    /// CFA = rbp + offset: the function has its frame pointer set up.
    case framePointer(Int64)
    /// Another register, or a DWARF expression.
    case other
  }

  private struct CIE {
    var codeAlignment: UInt64
    var dataAlignment: Int64
    var pointerEncoding: UInt8
    var hasAugmentationData: Bool
    var instructions: Range<Int>
  }

  private struct FDE {
    var start: UInt64
    var end: UInt64
    var cie: Int
    var instructions: Range<Int>
  }

  /// The file's PT_LOAD segments, to place a file offset (set when read
  /// from a file).
  private let segments: [(offset: UInt64, address: UInt64, size: UInt64)]
  private let bytes: [UInt8]
  /// The section's virtual address: pc-relative pointers are relative to it.
  private let address: UInt64
  private let cies: [Int: CIE]
  /// Sorted by start.
  private let fdes: [FDE]

  /// A section larger than this is not read.
  static let sectionLimit = 32 << 20

  /// The `.eh_frame` section of an ELF file, read through `read`.
  public init?(reading read: (UInt64, Int) -> [UInt8]?) {
    guard let layout = ELFLayout(reading: read), let section = layout.sections.first(where: { $0.name == ".eh_frame" }),
      let bytes = ELFLayout.contents(of: section, limit: Self.sectionLimit, read)
    else { return nil }
    self.init(section: bytes, at: section.address, segments: layout.segments)
  }

  /// The rule at a file offset (from a mapping of the file).
  public func cfa(atFileOffset offset: UInt64) -> CFA? {
    guard let s = segments.first(where: { offset >= $0.offset && offset - $0.offset < $0.size }) else { return nil }
    return cfa(at: offset - s.offset + s.address)
  }

  /// A `.eh_frame` section's bytes, loaded at virtual address `address`, in
  /// a file with these PT_LOAD segments.
  public init?(section bytes: [UInt8], at address: UInt64, segments: [(offset: UInt64, address: UInt64, size: UInt64)] = []) {
    self.segments = segments
    self.bytes = bytes
    self.address = address
    var cies: [Int: CIE] = [:]
    var fdes: [FDE] = []
    var at = 0
    while at + 4 <= bytes.count {
      var r = Reader(bytes: bytes, at: at)
      guard var length = r.u32().map(UInt64.init), length != 0 else { break }  // 0: the terminator
      if length == 0xffff_ffff { guard let long = r.u64() else { break }; length = long }
      let content = r.at
      guard length <= UInt64(bytes.count - content) else { break }
      let end = content + Int(length)
      guard let id = r.u32() else { break }
      if id != 0, id <= UInt32(content),
        let cie = Self.cie(at: content - Int(id), in: bytes, sectionAddress: address, cache: &cies)
      {
        if let fde = Self.fde(&r, end: end, cie: content - Int(id), cie, sectionAddress: address) { fdes.append(fde) }
      }
      at = end
    }
    guard !fdes.isEmpty else { return nil }
    self.cies = cies
    self.fdes = fdes.sorted { $0.start < $1.start }
  }

  /// The CFA rule in force at `pc` (an address in the file's own terms, as
  /// symbols use); nil if no FDE covers it or its program is not understood.
  public func cfa(at pc: UInt64) -> CFA? {
    var low = 0
    var high = fdes.count
    while low < high {
      let mid = (low + high) / 2
      if fdes[mid].start <= pc { low = mid + 1 } else { high = mid }
    }
    guard low > 0, pc < fdes[low - 1].end, let cie = cies[fdes[low - 1].cie] else { return nil }
    let fde = fdes[low - 1]
    var state = Rule(register: 7, offset: 8, expression: false)  // at any call: rsp + 8
    var saved: [Rule] = []
    var location = fde.start
    for program in [cie.instructions, fde.instructions] {
      guard let stopped = run(program, cie: cie, pc: pc, location: &location, state: &state, saved: &saved) else {
        return nil
      }
      if stopped { break }
    }
    if state.expression { return .other }
    switch state.register {
    case 7: return .stackPointer(state.offset)
    case 6: return .framePointer(state.offset)
    default: return .other
    }
  }

  private struct Rule {
    var register: UInt64
    var offset: Int64
    var expression: Bool
  }

  /// Runs CFA instructions until the location passes `pc`. true: stopped
  /// there; false: ran to the end; nil: an instruction it does not know.
  private func run(
    _ program: Range<Int>, cie: CIE, pc: UInt64, location: inout UInt64, state: inout Rule, saved: inout [Rule]
  ) -> Bool? {
    var r = Reader(bytes: bytes, at: program.lowerBound, end: program.upperBound)
    func advance(_ delta: UInt64?) -> Bool? {
      guard let delta else { return nil }
      let next = location &+ delta &* cie.codeAlignment
      if next > pc { return true }
      location = next
      return false
    }
    while r.at < program.upperBound {
      guard let op = r.u8() else { return nil }
      var stop: Bool? = false
      switch op >> 6 {
      case 1: stop = advance(UInt64(op & 0x3f))  // advance_loc
      case 2: stop = r.uleb() == nil ? nil : false  // offset: a register's rule
      case 3: break  // restore: a register's rule
      default:
        switch op {
        case 0x00: break  // nop
        case 0x01:  // set_loc
          guard let to = r.pointer(cie.pointerEncoding, sectionAddress: address) else { return nil }
          if to > pc { return true }
          location = to
        case 0x02: stop = advance(r.u8().map(UInt64.init))
        case 0x03: stop = advance(r.u16().map(UInt64.init))
        case 0x04: stop = advance(r.u32().map(UInt64.init))
        case 0x05, 0x09, 0x14, 0x2f: stop = r.uleb() != nil && r.uleb() != nil ? false : nil
        case 0x06, 0x07, 0x08, 0x2e: stop = r.uleb() == nil ? nil : false
        case 0x11, 0x15: stop = r.uleb() != nil && r.sleb() != nil ? false : nil
        case 0x0a: saved.append(state)
        case 0x0b:
          guard let last = saved.popLast() else { return nil }
          state = last
        case 0x0c:  // def_cfa
          guard let register = r.uleb(), let offset = r.uleb() else { return nil }
          state = Rule(register: register, offset: Int64(truncatingIfNeeded: offset), expression: false)
        case 0x0d:  // def_cfa_register
          guard let register = r.uleb() else { return nil }
          state.register = register
          state.expression = false
        case 0x0e:  // def_cfa_offset
          guard let offset = r.uleb() else { return nil }
          state.offset = Int64(truncatingIfNeeded: offset)
        case 0x0f:  // def_cfa_expression
          guard let length = r.uleb(), r.skip(length) else { return nil }
          state.expression = true
        case 0x10, 0x16:  // expression, val_expression: a register's rule
          guard r.uleb() != nil, let length = r.uleb(), r.skip(length) else { return nil }
        case 0x12:  // def_cfa_sf
          guard let register = r.uleb(), let offset = r.sleb() else { return nil }
          state = Rule(register: register, offset: offset &* cie.dataAlignment, expression: false)
        case 0x13:  // def_cfa_offset_sf
          guard let offset = r.sleb() else { return nil }
          state.offset = offset &* cie.dataAlignment
        default: return nil
        }
      }
      guard let stopped = stop else { return nil }
      if stopped { return true }
    }
    return false
  }

  private static func cie(at offset: Int, in bytes: [UInt8], sectionAddress address: UInt64, cache: inout [Int: CIE]) -> CIE? {
    if let known = cache[offset] { return known }
    var r = Reader(bytes: bytes, at: offset)
    guard let length = r.u32(), length != 0xffff_ffff, length <= UInt32(bytes.count - r.at) else { return nil }
    let end = r.at + Int(length)
    r = Reader(bytes: bytes, at: r.at, end: end)
    guard r.u32() == 0, let version = r.u8(), let augmentation = r.cString(),
      let codeAlignment = r.uleb(), let dataAlignment = r.sleb(),
      (version == 1 ? r.u8().map(UInt64.init) : r.uleb()) != nil
    else { return nil }
    var cie = CIE(codeAlignment: codeAlignment, dataAlignment: dataAlignment, pointerEncoding: 0,
                  hasAugmentationData: augmentation.first == UInt8(ascii: "z"), instructions: 0..<0)
    if cie.hasAugmentationData {
      guard let length = r.uleb(), length <= UInt64(end - r.at) else { return nil }
      let dataEnd = r.at + Int(length)
      for letter in augmentation.dropFirst() {
        switch letter {
        case UInt8(ascii: "R"): guard let encoding = r.u8() else { return nil }; cie.pointerEncoding = encoding
        case UInt8(ascii: "P"):
          guard let encoding = r.u8(), r.pointer(encoding, sectionAddress: address) != nil else { return nil }
        case UInt8(ascii: "L"): guard r.u8() != nil else { return nil }
        default: break
        }
      }
      r.at = dataEnd
    } else if !augmentation.isEmpty {
      return nil  // "eh" and other old forms: not produced by current toolchains
    }
    cie.instructions = r.at..<end
    cache[offset] = cie
    return cie
  }

  private static func fde(_ r: inout Reader, end: Int, cie offset: Int, _ cie: CIE, sectionAddress: UInt64) -> FDE? {
    r.end = end
    guard let start = r.pointer(cie.pointerEncoding, sectionAddress: sectionAddress),
      let range = r.pointer(cie.pointerEncoding & 0x0f, sectionAddress: sectionAddress)
    else { return nil }
    if cie.hasAugmentationData {
      guard let length = r.uleb(), r.skip(length) else { return nil }
    }
    return FDE(start: start, end: start &+ range, cie: offset, instructions: r.at..<end)
  }
}

/// Bounds-checked DWARF reads over a byte array.
private struct Reader {
  private var data: LittleEndianBytes
  var at: Int
  var end: Int {
    get { data.end }
    set { data = LittleEndianBytes(data.bytes, end: newValue) }
  }
  private var bytes: [UInt8] { data.bytes }

  init(bytes: [UInt8], at: Int, end: Int? = nil) {
    data = LittleEndianBytes(bytes, end: end ?? bytes.count)
    self.at = at
  }

  private mutating func uint(_ size: Int) -> UInt64? {
    guard let value = data.uint(at, size) else { return nil }
    at += size
    return value
  }

  mutating func u8() -> UInt8? { uint(1).map { UInt8($0) } }
  mutating func u16() -> UInt16? { uint(2).map { UInt16($0) } }
  mutating func u32() -> UInt32? { uint(4).map { UInt32($0) } }
  mutating func u64() -> UInt64? { uint(8) }

  mutating func skip(_ count: UInt64) -> Bool {
    guard count <= UInt64(max(0, end - at)) else { return false }
    at += Int(count)
    return true
  }

  mutating func uleb() -> UInt64? {
    var value: UInt64 = 0
    var shift: UInt64 = 0
    while let byte = u8() {
      if shift < 64 { value |= UInt64(byte & 0x7f) << shift }
      shift += 7
      if byte & 0x80 == 0 { return value }
    }
    return nil
  }

  mutating func sleb() -> Int64? {
    var value: Int64 = 0
    var shift: Int64 = 0
    while let byte = u8() {
      if shift < 64 { value |= Int64(byte & 0x7f) << shift }
      shift += 7
      if byte & 0x80 == 0 {
        if shift < 64, byte & 0x40 != 0 { value |= -1 << shift }
        return value
      }
    }
    return nil
  }

  mutating func cString() -> [UInt8]? {
    guard let nul = bytes[at..<end].firstIndex(of: 0) else { return nil }
    defer { at = nul + 1 }
    return Array(bytes[at..<nul])
  }

  /// A pointer in a DW_EH_PE encoding: absolute or pc-relative (to where it
  /// is stored), which is what .eh_frame uses.
  mutating func pointer(_ encoding: UInt8, sectionAddress: UInt64) -> UInt64? {
    guard encoding != 0xff else { return nil }
    let field = sectionAddress &+ UInt64(at)
    let value: UInt64?
    switch encoding & 0x0f {
    case 0x00, 0x04, 0x0c: value = u64()
    case 0x01: value = uleb()
    case 0x02: value = u16().map(UInt64.init)
    case 0x03: value = u32().map(UInt64.init)
    case 0x09: value = sleb().map { UInt64(bitPattern: $0) }
    case 0x0a: value = u16().map { UInt64(bitPattern: Int64(Int16(bitPattern: $0))) }
    case 0x0b: value = u32().map { UInt64(bitPattern: Int64(Int32(bitPattern: $0))) }
    default: return nil
    }
    guard let value else { return nil }
    switch encoding & 0x70 {
    case 0x00: return value
    case 0x10: return field &+ value
    default: return nil  // textrel, datarel, funcrel: not used in .eh_frame on x86-64
    }
  }
}

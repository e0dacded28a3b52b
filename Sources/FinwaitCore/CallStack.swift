/// One frame of a closer's user stack.
public struct StackFrame: Sendable, Equatable {
  public var address: UInt64
  /// The mapped file's path; nil when no file mapping held the address (or
  /// the process was gone before its mappings were read).
  public var module: String?
  /// The function holding the address; nil where the file names none.
  public var symbol: String?
  /// From the symbol's start; without a symbol, the address in the module's
  /// own terms (its ELF virtual address, what `addr2line -e module` takes).
  public var offset: UInt64
  /// Not from the kernel's frame-pointer walk: the return address found at
  /// the stack pointer, the caller of a libc wrapper that sets up no frame.
  public var recovered: Bool

  public init(address: UInt64, module: String? = nil, symbol: String? = nil, offset: UInt64 = 0, recovered: Bool = false) {
    self.address = address
    self.module = module
    self.symbol = symbol
    self.offset = offset
    self.recovered = recovered
  }

  /// `fwstack:close_conn+0x1c`, `libfoo.so+0x11a9` (no symbol), or
  /// `0x7f3a...` (no module).
  public var text: String {
    guard let module else { return "0x" + String(address, radix: 16) }
    let file = module.split(separator: "/").last.map(String.init) ?? module
    guard let symbol else { return file + "+0x" + String(offset, radix: 16) }
    return offset == 0 ? "\(file):\(symbol)" : "\(file):\(symbol)+0x\(String(offset, radix: 16))"
  }
}

extension CallStack: Equatable {
  public static func == (a: CallStack, b: CallStack) -> Bool { a.id == b.id && a.frames == b.frames }
}

/// A captured user stack, innermost frame first, named once and shared by
/// every record that carries its id: records pay a reference, not a lookup.
public final class CallStack: Sendable {
  public let id: Int16
  /// The first id named with the same frames. Each process has its own
  /// address layout, so one call site gets an id per process (per exec);
  /// counts are merged under this one.
  public let site: Int16
  public let frames: [StackFrame]
  /// Trace lines show this many frames.
  public static let shownFrames = 4
  /// `a<b<c<d<...`: callee before caller, rendered once.
  public let compactText: String
  /// The `stack` array of `--json`, rendered once.
  public let json: String

  public init(id: Int16, frames: [StackFrame], site: Int16? = nil) {
    self.id = id
    self.site = site ?? id
    self.frames = frames
    var text = frames.prefix(Self.shownFrames).map(\.text).joined(separator: "<")
    if frames.count > Self.shownFrames { text += "<..." }
    compactText = frames.isEmpty ? "?" : text
    var line = LineBuffer()
    line.append(ascii: "[")
    for (i, f) in frames.enumerated() {
      if i > 0 { line.append(ascii: ",") }
      line.append(ascii: "{")
      line.json("address") {
        $0.append("0x")
        $0.append(hex: f.address)
      }
      if let module = f.module { line.json("module", string: module) } else { line.jsonNull("module") }
      if let symbol = f.symbol { line.json("symbol", string: symbol) } else { line.jsonNull("symbol") }
      line.json("offset", number: f.offset)
      if f.recovered { line.json("recovered", bool: true) }
      line.append(ascii: "}")
    }
    line.append(ascii: "]")
    json = line.text
  }

  /// What makes two stacks the same call site: every frame's name, not
  /// its address.
  public var signature: String { frames.map(\.text).joined(separator: "<") }

  /// `    fwstack:close_conn+0x1c` lines, innermost first, for `hist --by stack`.
  public var lines: [String] {
    frames.isEmpty ? ["    (no frames)"] : frames.map { "    " + $0.text + ($0.recovered ? " (recovered)" : "") }
  }
}

/// Names stack addresses from a process's executable mappings and the ELF
/// symbols of the mapped files. Files are read once per (device, inode),
/// so each binary or library costs one parse however many stacks use it.
public struct StackSymbolizer {
  private struct FileKey: Hashable {
    var device: String
    var inode: UInt64
  }

  private var files: [FileKey: ELFSymbols?] = [:]
  private var frameTables: [FileKey: EHFrame?] = [:]

  public init() {}

  /// Files parsed for symbols (including those that had none).
  public var filesRead: Int { files.count }

  /// `addresses` innermost first, as the kernel gives them. The innermost is
  /// where the syscall was made; the others are return addresses, named by
  /// the call before them (a call that is a function's last instruction
  /// returns into the next one). `stackWords` (the user stack from its
  /// pointer up) give the innermost function's return address, which a
  /// frame-pointer walk skips when that function sets up no frame: it is
  /// inserted as the second frame when found (see `returnAddress`). `load`
  /// reads a mapped file's symbols, `loadFrames` its call-frame information.
  public mutating func symbolize(
    _ addresses: [UInt64], stackWords: [UInt64] = [], mappings: [Mapping],
    isCall: (UInt64) -> Bool = { _ in false }, load: (Mapping) -> ELFSymbols?,
    loadFrames: (Mapping) -> EHFrame? = { _ in nil }
  ) -> [StackFrame] {
    var frames: [(address: UInt64, recovered: Bool)] = addresses.map { ($0, false) }
    if let caller = returnAddress(addresses, stackWords, mappings: mappings, isCall: isCall, loadFrames: loadFrames) {
      frames.insert((caller, true), at: 1)
    }
    return frames.enumerated().map { i, f in
      name(f.address, isReturn: i > 0, recovered: f.recovered, mappings: mappings, load: load)
    }
  }

  /// The innermost function's return address, when the walk missed it. Its
  /// CFA rule at the syscall's address says where it is: rsp-based (no frame
  /// set up: the walk skipped the caller) -> the word at CFA - 8; rbp-based
  /// (a frame: the walk found the caller) -> none. Without call-frame
  /// information, the word at the stack pointer (a wrapper that pushed
  /// nothing). Kept only if it lies in an executable mapping and follows a
  /// call instruction, and the walk did not already find it.
  private mutating func returnAddress(
    _ addresses: [UInt64], _ words: [UInt64], mappings: [Mapping], isCall: (UInt64) -> Bool,
    loadFrames: (Mapping) -> EHFrame?
  ) -> UInt64? {
    guard let pc = addresses.first, !words.isEmpty, let mapping = mappings.first(where: { $0.holds(pc) }) else {
      return nil
    }
    let key = FileKey(device: mapping.device, inode: mapping.inode)
    if frameTables[key] == nil { frameTables[key] = .some(loadFrames(mapping)) }
    var candidate = words[0]
    switch (frameTables[key] ?? nil)?.cfa(atFileOffset: mapping.fileOffset(of: pc)) {
    case let .stackPointer(offset)?:
      guard offset >= 8, offset % 8 == 0, (offset - 8) / 8 < Int64(words.count) else { return nil }
      candidate = words[Int((offset - 8) / 8)]
    case .framePointer?, .other?: return nil
    case nil: break
    }
    guard candidate != 0, addresses.count < 2 || addresses[1] != candidate,
      mappings.contains(where: { $0.holds(candidate) }), isCall(candidate)
    else { return nil }
    return candidate
  }

  private mutating func name(
    _ address: UInt64, isReturn: Bool, recovered: Bool, mappings: [Mapping], load: (Mapping) -> ELFSymbols?
  ) -> StackFrame {
    var frame = StackFrame(address: address, recovered: recovered)
    guard let mapping = mappings.first(where: { $0.holds(address) }) else { return frame }
    frame.module = mapping.path
    let fileOffset = mapping.fileOffset(of: address)
    frame.offset = fileOffset
    let key = FileKey(device: mapping.device, inode: mapping.inode)
    if files[key] == nil { files[key] = .some(load(mapping)) }
    guard let elf = files[key] ?? nil, let elfAddress = elf.address(ofFileOffset: fileOffset) else { return frame }
    frame.offset = elfAddress
    let lookup = isReturn && elfAddress > 0 ? elfAddress - 1 : elfAddress
    if let symbol = elf.symbol(containing: lookup) {
      frame.symbol = symbol.name
      frame.offset = elfAddress - symbol.address
    }
    return frame
  }
}

/// Whether the bytes just before `address` (`before`, up to 7, ending at the
/// address) end with an x86-64 call instruction, so that `address` is a
/// return address: `call rel32`, or `call` through a register or memory
/// (FF /2, any ModRM form; a REX prefix before it does not change the
/// length that matters).
public func endsWithCall(_ before: [UInt8]) -> Bool {
  let n = before.count
  func at(_ back: Int) -> UInt8? { back <= n ? before[n - back] : nil }
  if at(5) == 0xE8 { return true }
  for length in 2...7 {
    guard at(length) == 0xFF, let modrm = at(length - 1), (modrm >> 3) & 7 == 2 else { continue }
    let mod = modrm >> 6
    let rm = modrm & 7
    var size = 2  // opcode and ModRM
    if mod != 3 && rm == 4 {
      size += 1  // SIB
      if mod == 0, let sib = at(length - 2), sib & 7 == 5 { size += 4 }
    }
    switch mod {
    case 0 where rm == 5: size += 4  // [rip+disp32]
    case 1: size += 1
    case 2: size += 4
    default: break
    }
    if size == length { return true }
  }
  return false
}

/// Whether an ELF image was built by the Go toolchain, from its section
/// headers: a `.go.buildinfo` section starting with Go's build-info magic, or
/// a `.note.go.buildid` note owned by "Go". The linker writes both even into
/// stripped binaries (`-s -w` drops symbols, not these). Reads the ELF and
/// section headers, the section names and at most 16 bytes of one section.
public enum ELFGoBinary {
  /// `\xff Go buildinf:`, the first 14 bytes of `.go.buildinfo`.
  static let buildInfoMagic: [UInt8] = [0xff] + Array(" Go buildinf:".utf8)
  /// NT_GO_BUILD_ID, the note type of `.note.go.buildid`.
  static let buildIDNoteType: UInt32 = 4

  /// A whole file in memory (tests, small files).
  public static func isGo(_ bytes: [UInt8]) -> Bool { isGo(reading: sliceReader(bytes)) }

  /// `read`: file offset, byte count -> exactly those bytes, or nil.
  public static func isGo(reading read: (UInt64, Int) -> [UInt8]?) -> Bool {
    guard let layout = ELFLayout(reading: read) else { return false }
    for section in layout.sections {
      switch section.name {
      case ".go.buildinfo":
        // SHT_NOBITS has no bytes in the file to check.
        if section.type != 8, section.size >= UInt64(buildInfoMagic.count),
          read(section.offset, buildInfoMagic.count) == buildInfoMagic
        {
          return true
        }
      case ".note.go.buildid":
        // Elf64_Nhdr: namesz, descsz, type (4 bytes each), then "Go\0" padded to 4.
        if section.type == 7, section.size >= 16, let note = read(section.offset, 16).map(LittleEndianBytes.init),
          note.u32(0) == 4, note.u32(8) == buildIDNoteType, note.bytes[12..<16] == [0x47, 0x6f, 0, 0]
        {
          return true
        }
      default:
        continue
      }
    }
    return false
  }
}

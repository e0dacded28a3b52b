import Foundation
import XCTest
@testable import FinwaitCore

final class KnownProgramsTests: XCTestCase {
  func testProgramsAreNamedByTheirThreadNames() {
    XCTAssertEqual(KnownProgram.identify(comm: "nginx", isGoBinary: false), .nginx)
    XCTAssertEqual(KnownProgram.identify(comm: "haproxy", isGoBinary: false), .haproxy)
    XCTAssertEqual(KnownProgram.identify(comm: "envoy", isGoBinary: false), .envoy)
    XCTAssertEqual(KnownProgram.identify(comm: "kube-proxy", isGoBinary: true), .kubeProxy, "before Go")
    // comm as the kernel pads it, or as /proc/PID/comm ends it.
    XCTAssertEqual(KnownProgram.identify(comm: "nginx\0\0\0\0\0\0\0\0\0\0", isGoBinary: false), .nginx)
    XCTAssertEqual(KnownProgram.identify(comm: "haproxy\n", isGoBinary: false), .haproxy)
    // nginx's "worker process" is its command line, not its comm.
    XCTAssertNil(KnownProgram.identify(comm: "nginx: worker", isGoBinary: false))
    XCTAssertNil(KnownProgram.identify(comm: "nginx-proxy", isGoBinary: false))
    XCTAssertNil(KnownProgram.identify(comm: "sshd", isGoBinary: false))
    XCTAssertNil(KnownProgram.identify(comm: "", isGoBinary: false))
  }

  func testEnvoyWorkerThreadsAreEnvoy() {
    for comm in ["wrk:worker_0", "wrk:worker_7", "wrk:worker_1234"] {
      XCTAssertEqual(KnownProgram.identify(comm: comm, isGoBinary: false), .envoy, comm)
    }
    // Envoy's other threads (the watchdog's "dog:") and look-alikes hold no proxied connection.
    for comm in ["dog:worker_0", "wrk:worker_", "wrk:worker_a", "wrk:main", "worker_0"] {
      XCTAssertNil(KnownProgram.identify(comm: comm, isGoBinary: false), comm)
    }
  }

  func testAnyGoBinaryIsGoUnlessItIsAKnownProgram() {
    XCTAssertEqual(KnownProgram.identify(comm: "prometheus", isGoBinary: true), .go)
    XCTAssertEqual(KnownProgram.identify(comm: "wrk:worker_0", isGoBinary: true), .envoy)
    XCTAssertNil(KnownProgram.identify(comm: "prometheus", isGoBinary: false))
  }

  func testEveryProgramHasAdviceForBothSituationsNamingItsSettings() throws {
    for program in KnownProgram.allCases {
      for situation in [KnownProgram.Situation.holdsFinWait2, .holdsCloseWait] {
        let advice = try XCTUnwrap(program.advice(for: situation), "\(program) \(situation)")
        XCTAssertEqual(advice.reference, "docs/programs.md#\(program.rawValue)")
        XCTAssertFalse(advice.settings.isEmpty)
        for setting in advice.settings {
          XCTAssertTrue(advice.text.contains(setting), "\(program) \(situation): the text does not name \(setting)")
        }
      }
    }
  }

  /// The code may only advise what docs/programs.md cites: each setting an
  /// advice names is in the section its reference points to.
  func testEveryAdvisedSettingIsCitedInTheSectionItReferences() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/programs.md")
    let sections = Self.sections(of: try String(contentsOf: url, encoding: .utf8))
    XCTAssertEqual(Set(KnownProgram.allCases.map(\.rawValue)).subtracting(sections.keys), [])
    for program in KnownProgram.allCases {
      for situation in [KnownProgram.Situation.holdsFinWait2, .holdsCloseWait] {
        guard let advice = program.advice(for: situation) else { continue }
        let parts = advice.reference.split(separator: "#", maxSplits: 1).map(String.init)
        XCTAssertEqual(parts.first, "docs/programs.md")
        let section = try XCTUnwrap(sections[parts.last ?? ""], "no section for \(advice.reference)")
        for setting in advice.settings {
          XCTAssertTrue(section.contains("`\(setting)`"), "\(advice.reference) does not cite `\(setting)`")
        }
      }
    }
  }

  /// `## Heading` sections by their Markdown anchor (lowercase, spaces to dashes).
  static func sections(of markdown: String) -> [String: String] {
    var sections: [String: String] = [:]
    var anchor: String?
    for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.hasPrefix("## ") {
        anchor = line.dropFirst(3).lowercased().replacingOccurrences(of: " ", with: "-")
          .filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        sections[anchor!] = ""
      } else if let anchor {
        sections[anchor]! += line + "\n"
      }
    }
    return sections
  }

  func testTheSectionSplitterFindsAnchorsAsMarkdownDoes() {
    let sections = Self.sections(of: "intro `x`\n## kube-proxy\na `b`\n## HAProxy\nc\n")
    XCTAssertEqual(sections, ["kube-proxy": "a `b`\n", "haproxy": "c\n\n"])
  }

  // MARK: Go binaries

  func testASectionNamedGoBuildinfoWithItsMagicMakesAGoBinary() {
    XCTAssertTrue(ELFGoBinary.isGo(Self.elf(sections: [(".go.buildinfo", 1, ELFGoBinary.buildInfoMagic + [8, 2])])))
    XCTAssertTrue(ELFGoBinary.isGo(Self.elf(sections: [(".text", 1, [0x90, 0x90]),
                                                       (".go.buildinfo", 1, ELFGoBinary.buildInfoMagic)])))
  }

  func testTheGoBuildIDNoteMakesAGoBinary() {
    // namesz 4, descsz 8, type 4 (NT_GO_BUILD_ID), "Go\0\0", the id.
    let note = Self.le32(4) + Self.le32(8) + Self.le32(4) + [0x47, 0x6f, 0, 0] + Array("abcdefgh".utf8)
    XCTAssertTrue(ELFGoBinary.isGo(Self.elf(sections: [(".note.go.buildid", 7, note)])))
    // The same note owned by GNU, or of another type, is not Go's.
    let gnu = Self.le32(4) + Self.le32(8) + Self.le32(4) + [0x47, 0x4e, 0x55, 0] + Array("abcdefgh".utf8)
    XCTAssertFalse(ELFGoBinary.isGo(Self.elf(sections: [(".note.go.buildid", 7, gnu)])))
    let other = Self.le32(4) + Self.le32(8) + Self.le32(3) + [0x47, 0x6f, 0, 0] + Array("abcdefgh".utf8)
    XCTAssertFalse(ELFGoBinary.isGo(Self.elf(sections: [(".note.go.buildid", 7, other)])))
  }

  func testWithoutGoSectionsItIsNotGo() throws {
    XCTAssertFalse(ELFGoBinary.isGo(Self.elf(sections: [(".text", 1, [0x90]), (".data", 1, [1, 2, 3])])))
    // The name alone is not enough: the section must start with the magic.
    XCTAssertFalse(ELFGoBinary.isGo(Self.elf(sections: [(".go.buildinfo", 1, Array(repeating: 0, count: 32))])))
    XCTAssertFalse(ELFGoBinary.isGo(Self.elf(sections: [(".go.buildinfo", 1, Array(ELFGoBinary.buildInfoMagic.prefix(8)))])))
    // This test bundle: a real ELF file, built by swiftc, not Go.
    let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    XCTAssertFalse(ELFGoBinary.isGo(Array(try Data(contentsOf: URL(fileURLWithPath: own)))))
  }

  func testMalformedInputIsNotGoAndDoesNotCrash() {
    XCTAssertFalse(ELFGoBinary.isGo([]))
    XCTAssertFalse(ELFGoBinary.isGo(Array("not an ELF file".utf8)))
    let go = Self.elf(sections: [(".go.buildinfo", 1, ELFGoBinary.buildInfoMagic)])
    // Every truncation of a Go image: the section table is at the end, so none is Go.
    for cut in 0..<go.count { XCTAssertFalse(ELFGoBinary.isGo(Array(go.prefix(cut))), "cut at \(cut)") }
    // A section pointing past the end of the file.
    var broken = go
    let sectionTable = Int(broken[40]) | Int(broken[41]) << 8
    broken[sectionTable + 2 * 64 + 24] = 0xff  // .go.buildinfo's offset
    broken[sectionTable + 2 * 64 + 25] = 0xff
    XCTAssertFalse(ELFGoBinary.isGo(broken))
  }

  func testAGoImageIsRecognisedFromItsHeadersAlone() {
    let go = Self.elf(sections: [(".text", 1, Array(repeating: 0x90, count: 4096)),
                                 (".go.buildinfo", 1, ELFGoBinary.buildInfoMagic)])
    var read = 0
    XCTAssertTrue(ELFGoBinary.isGo { offset, count in
      read += count
      return sliceReader(go)(offset, count)
    })
    XCTAssertLessThan(read, 1024, "the .text bytes are never read")
  }

  static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
  static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
  static func le16(_ v: UInt16) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }

  /// A minimal ELF64 little-endian file: the header, each section's bytes,
  /// `.shstrtab`, then the section table (null, .shstrtab, the sections).
  static func elf(sections: [(name: String, type: UInt32, bytes: [UInt8])]) -> [UInt8] {
    var names: [UInt8] = [0] + Array(".shstrtab".utf8) + [0]
    var body: [UInt8] = []
    var table = [UInt8](repeating: 0, count: 64)  // SHN_UNDEF
    func entry(name: Int, type: UInt32, offset: Int, size: Int) -> [UInt8] {
      le32(UInt32(name)) + le32(type) + le64(0) + le64(0) + le64(UInt64(offset)) + le64(UInt64(size))
        + le32(0) + le32(0) + le64(1) + le64(0)
    }
    var entries: [[UInt8]] = []
    for section in sections {
      let nameAt = names.count
      names += Array(section.name.utf8) + [0]
      entries.append(entry(name: nameAt, type: section.type, offset: 64 + body.count, size: section.bytes.count))
      body += section.bytes
    }
    let namesAt = 64 + body.count
    body += names
    table += entry(name: 1, type: 3, offset: namesAt, size: names.count)  // SHT_STRTAB
    for e in entries { table += e }
    let shoff = 64 + body.count
    var header: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 8)
    header += le16(2) + le16(62) + le32(1)  // ET_EXEC, EM_X86_64, EV_CURRENT
    header += le64(0) + le64(0) + le64(UInt64(shoff))  // entry, phoff, shoff
    header += le32(0) + le16(64) + le16(56) + le16(0)  // flags, ehsize, phentsize, phnum
    header += le16(64) + le16(UInt16(1 + 1 + sections.count)) + le16(1)  // shentsize, shnum, shstrndx
    return header + body + table
  }
}

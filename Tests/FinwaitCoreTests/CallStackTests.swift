import Foundation
import XCTest
@testable import FinwaitCore

final class CallStackTests: XCTestCase {
  // MARK: return addresses

  func testCallInstructionsBeforeAnAddressAreRecognized() {
    let pad: [UInt8] = [0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]
    func ends(_ code: [UInt8]) -> Bool { endsWithCall(Array((pad + code).suffix(7))) }
    XCTAssertTrue(ends([0xE8, 0x10, 0x20, 0x30, 0x40]), "call rel32 (a PLT call)")
    XCTAssertTrue(ends([0xFF, 0x15, 1, 2, 3, 4]), "call [rip+disp32] (-fno-plt)")
    XCTAssertTrue(ends([0xFF, 0xD0]), "call rax")
    XCTAssertTrue(ends([0x41, 0xFF, 0xD0]), "call r8")
    XCTAssertTrue(ends([0xFF, 0x10]), "call [rax]")
    XCTAssertTrue(ends([0xFF, 0x50, 0x08]), "call [rax+8]")
    XCTAssertTrue(ends([0xFF, 0x90, 1, 0, 0, 0]), "call [rax+disp32]")
    XCTAssertTrue(ends([0xFF, 0x14, 0x24]), "call [rsp]")
    XCTAssertTrue(ends([0xFF, 0x54, 0x24, 0x08]), "call [rsp+8]")
    XCTAssertTrue(ends([0xFF, 0x14, 0xC5, 1, 2, 3, 4]), "call [rax*8+disp32]")

    XCTAssertFalse(ends([0xE9, 0x10, 0x20, 0x30, 0x40]), "jmp rel32")
    XCTAssertFalse(ends([0xFF, 0xE0]), "jmp rax (FF /4)")
    XCTAssertFalse(ends([0xFF, 0x50]), "call [rax+disp8] cut short")
    XCTAssertFalse(ends([0x48, 0x89, 0xE5]), "mov rbp, rsp")
    XCTAssertFalse(endsWithCall([]))
    XCTAssertFalse(endsWithCall([0xD0]))
  }

  // MARK: symbolization

  /// This test binary's own text mapping and a function inside it, with
  /// the runtime address of its first byte.
  private func ownFunction() throws -> (mapping: Mapping, elf: ELFSymbols, symbol: ELFSymbols.Symbol, runtime: UInt64) {
    let path = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let elf = try XCTUnwrap(ELFSymbols(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
    let maps = Mapping.parse(try String(contentsOfFile: "/proc/self/maps", encoding: .utf8))
    for mapping in maps where mapping.path == path {
      for symbol in elf.symbols where symbol.size >= 32 {
        guard let segment = elf.segments.first(where: { symbol.address >= $0.address && symbol.address < $0.address + $0.size })
        else { continue }
        let fileOffset = symbol.address - segment.address + segment.offset
        let runtime = mapping.start + fileOffset - mapping.offset
        if mapping.holds(runtime) && mapping.holds(runtime + symbol.size) { return (mapping, elf, symbol, runtime) }
      }
    }
    throw XCTSkip("no function of the test binary found in its own text mapping")
  }

  func testAddressesOfThisBinaryAreNamedByItsSymbols() throws {
    let own = try ownFunction()
    var symbolizer = StackSymbolizer()
    var loads = 0
    let frames = symbolizer.symbolize(
      [own.runtime + 3, own.runtime + 8, own.runtime + own.symbol.size], mappings: [own.mapping],
      load: { _ in loads += 1; return own.elf })
    XCTAssertEqual(frames.map(\.symbol), [own.symbol.name, own.symbol.name, own.symbol.name])
    XCTAssertEqual(frames.map(\.offset), [3, 8, own.symbol.size],
                   "a return address just past the function's end is its caller's call")
    XCTAssertEqual(frames[0].module, own.mapping.path)
    XCTAssertEqual(loads, 1)
    _ = symbolizer.symbolize([own.runtime], mappings: [own.mapping], load: { _ in loads += 1; return own.elf })
    XCTAssertEqual(loads, 1, "each file is parsed once")
    XCTAssertEqual(symbolizer.filesRead, 1)
  }

  func testWithoutSymbolsAModuleOffsetWithoutAModuleTheAddress() {
    let lib = Mapping(start: 0x7f00_0000_0000, end: 0x7f00_0010_0000, offset: 0x2000, path: "/usr/lib/libfoo.so.1")
    var symbolizer = StackSymbolizer()
    let frames = symbolizer.symbolize([0x7f00_0000_0100, 0x5555_0000_0000], mappings: [lib], load: { _ in nil })
    XCTAssertEqual(frames.map(\.text), ["libfoo.so.1+0x2100", "0x555500000000"])
    XCTAssertNil(frames[1].module)
  }

  func testTheStackTopIsInsertedOnlyWhenItFollowsACall() {
    let bin = Mapping(start: 0x1000, end: 0x9000, offset: 0, path: "/srv/app")
    var symbolizer = StackSymbolizer()
    func frames(_ top: UInt64, isCall: Bool, walk: [UInt64] = [0x1100, 0x2200]) -> [UInt64] {
      symbolizer.symbolize(walk, stackWords: [top], mappings: [bin], isCall: { _ in isCall }, load: { _ in nil })
        .map(\.address)
    }
    XCTAssertEqual(frames(0x3300, isCall: true), [0x1100, 0x3300, 0x2200])
    XCTAssertEqual(frames(0x3300, isCall: false), [0x1100, 0x2200])
    XCTAssertEqual(frames(0x2200, isCall: true), [0x1100, 0x2200], "the walk already found it")
    XCTAssertEqual(frames(0xA000, isCall: true), [0x1100, 0x2200], "outside every executable mapping")
    XCTAssertEqual(frames(0, isCall: true), [0x1100, 0x2200])
    XCTAssertEqual(frames(0x3300, isCall: true, walk: [0x1100]), [0x1100, 0x3300])
    let recovered = symbolizer.symbolize([0x1100], stackWords: [0x3300], mappings: [bin], isCall: { _ in true }, load: { _ in nil })
    XCTAssertEqual(recovered.map(\.recovered), [false, true])
  }

  // MARK: rendering

  func testCompactTextShowsTheTopFramesAndTheJSONEveryFrame() throws {
    let frames = (0..<6).map { StackFrame(address: 0x1000 + UInt64($0), module: "/srv/app", symbol: "f\($0)", offset: UInt64($0)) }
    let stack = CallStack(id: 7, frames: frames)
    XCTAssertEqual(stack.compactText, "app:f0<app:f1+0x1<app:f2+0x2<app:f3+0x3<...")
    XCTAssertEqual(CallStack(id: 1, frames: []).compactText, "?")
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stack.json.utf8)) as? [[String: Any]])
    XCTAssertEqual(json.count, 6)
    XCTAssertEqual(json[1]["symbol"] as? String, "f1")
    XCTAssertEqual(json[1]["module"] as? String, "/srv/app")
    XCTAssertEqual(json[1]["offset"] as? Int, 1)
    XCTAssertEqual(json[1]["address"] as? String, "0x1001")
    let bare = CallStack(id: 2, frames: [StackFrame(address: 0xabc, recovered: true)])
    let bareJSON = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bare.json.utf8)) as? [[String: Any]])
    XCTAssertTrue(bareJSON[0]["module"] is NSNull)
    XCTAssertEqual(bareJSON[0]["recovered"] as? Bool, true)
    XCTAssertEqual(bare.lines, ["    0xabc (recovered)"])
  }

  func testTheSameCallSiteInTwoProcessesHasOneSignature() {
    let a = CallStack(id: 1, frames: [StackFrame(address: 0x5555_0000_1010, module: "/srv/app", symbol: "send", offset: 0x10)])
    let b = CallStack(id: 2, frames: [StackFrame(address: 0x5600_0000_1010, module: "/srv/app", symbol: "send", offset: 0x10)])
    XCTAssertEqual(a.signature, b.signature)
    XCTAssertNotEqual(a, b)
    XCTAssertEqual(CallStack(id: 2, frames: b.frames, site: 1).site, 1)
  }

  // MARK: /proc/PID/maps

  func testMapsLinesKeepTheFileIdentityAndDropDeleted() throws {
    let line = "55d8c000-55d8d000 r-xp 00001000 fe:01 393243 /srv/app (deleted)"
    let m = try XCTUnwrap(Mapping(mapsLine: line[...]))
    XCTAssertEqual(m.path, "/srv/app")
    XCTAssertEqual(m.device, "fe:01")
    XCTAssertEqual(m.inode, 393243)
    XCTAssertEqual(m.fileOffset(of: 0x55d8_c010), 0x1010)
    XCTAssertTrue(m.holds(0x55d8_cfff))
    XCTAssertFalse(m.holds(0x55d8_d000))
  }
}

final class CallSiteOutputTests: XCTestCase {
  private let site = CallStack(id: 3, frames: [
    StackFrame(address: 0x7f00_0000_1000, module: "/usr/lib/libc.so.6", symbol: "shutdown", offset: 7),
    StackFrame(address: 0x5555_0000_1200, module: "/srv/app", symbol: "finish_response", offset: 14, recovered: true),
  ])

  private func record(stack: CallStack?, dwell: UInt64) -> Record {
    var r = Fixture.record(.exact(dwell), end: .peerFin)
    r.connection.stackID = stack?.id
    r.stack = stack
    return r
  }

  func testTraceLinesAndJSONCarryTheStack() throws {
    let r = record(stack: site, dwell: 2_000_000)
    let text = TextFormat(clock: WallClock(offset: 0)).line(r)
    XCTAssertTrue(text.hasSuffix(" stack=libc.so.6:shutdown+0x7<app:finish_response+0xe"), text)
    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(JSONFormat(clock: WallClock(offset: 0)).line(r).utf8)) as? [String: Any])
    XCTAssertEqual(json["stack_id"] as? Int, 3)
    let frames = try XCTUnwrap(json["stack"] as? [[String: Any]])
    XCTAssertEqual(frames.map { $0["symbol"] as? String }, ["shutdown", "finish_response"])
    let plain = JSONFormat(clock: WallClock(offset: 0)).line(record(stack: nil, dwell: 1))
    XCTAssertFalse(plain.contains("stack"))
  }

  func testTheSummaryCountsCallSitesMostConnectionsFirst() throws {
    let other = CallStack(id: 9, frames: [StackFrame(address: 1, module: "/srv/app", symbol: "drop", offset: 1)])
    // The same call site in another process: another id, the same site.
    let again = CallStack(id: 4, frames: site.frames, site: 3)
    var summary = Summary()
    summary.add(record(stack: site, dwell: 5_000_000))
    summary.add(record(stack: again, dwell: 9_000_000))
    summary.add(record(stack: other, dwell: 1_000_000))
    summary.add(record(stack: nil, dwell: 1_000_000))
    let losses = LossAccount(kernel: KernelCounters(), tracker: .init(), undecodable: 0)
    let text = summary.text(losses: losses, tracedFor: 1).joined(separator: "\n")
    XCTAssertTrue(text.contains("Call sites that sent the FIN (2 distinct), most connections first:"), text)
    let lines = text.split(separator: "\n").filter { $0.contains(" conns, longest ") }
    XCTAssertEqual(lines.count, 2)
    XCTAssertTrue(lines[0].hasPrefix("       2 conns, longest 9.0ms") && lines[0].hasSuffix("app:finish_response+0xe"), "\(lines)")
    XCTAssertTrue(lines[1].hasSuffix("app:drop+0x1"), "\(lines)")

    let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(summary.json(losses: losses, tracedFor: 1).utf8)) as? [String: Any])
    let sites = try XCTUnwrap(json["call_sites"] as? [[String: Any]])
    XCTAssertEqual(sites.map { $0["connections"] as? Int }, [2, 1])
    XCTAssertEqual(sites[0]["longest_dwell_ns"] as? Int, 9_000_000)
    XCTAssertEqual(json["stack_lost"] as? Int, 0)
    XCTAssertNil(try XCTUnwrap(JSONSerialization.jsonObject(with: Data(Summary().json(losses: losses, tracedFor: 1).utf8)) as? [String: Any])["call_sites"])
  }

  func testHistogramsByStackMergeOneCallSitesIds() {
    var intervals = IntervalHistograms(by: .stack, unitNanoseconds: 1_000_000)
    var a = record(stack: site, dwell: 5_000_000)
    a.connection.stackID = 3
    var b = a
    b.connection.stackID = 4
    var none = a
    none.connection.stackID = nil
    for r in [a, b, none] { intervals.add(r) }
    XCTAssertEqual(intervals.histograms.count, 3)
    intervals.mergeKeys { key in
      var key = key
      if key.stackID == 4 { key.stackID = 3 }
      return key
    }
    XCTAssertEqual(intervals.histograms[BreakdownKey(path: .close, stackID: 3)]?.total, 2)
    let text = intervals.render(details: { $0.stackID == 3 ? ["    frames"] : [] })
    XCTAssertEqual(text.filter { $0.hasPrefix("path = ") }, ["path = close, stack = none", "path = close, stack = 3"])
    XCTAssertEqual(text[text.firstIndex(of: "path = close, stack = 3")! + 1], "    frames")
  }
}

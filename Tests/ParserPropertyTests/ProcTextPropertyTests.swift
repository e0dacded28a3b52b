import FinwaitCore
import FinwaitTracing
import PropertyBased
import Testing

/// Whitespace procfs may put around a number.
private let blanks = ["", " ", "\t", "\n", "  \n", "\n\n"]

private struct Release: Sendable, CustomStringConvertible {
  var text: String
  var major: Int
  var minor: Int
  var description: String { text.debugDescription }
}

private struct Status: Sendable, CustomStringConvertible {
  var text: String
  var mask: UInt64
  var description: String { text.debugDescription }
}

@Suite struct ProcTextPropertyTests {
  // MARK: /proc/PID/fd/N -> "socket:[inode]"

  @Test func socketLinksRoundTrip() async {
    await propertyCheck(count: 500, input: anyWidth(UInt32.self)) { inode in
      #expect(ProcText.socketInode(fromLink: "socket:[\(inode)]") == inode)
    }
  }

  @Test func socketLinkParsesOnlyWhatTheKernelWrites() async {
    let hints = ["socket:[", "]", "socket:", "[", "pipe:[", "anon_inode:[eventpoll]", "/dev/null", "socket:[]", "4294967296"]
    let valid = anyWidth(UInt32.self).map { "socket:[\($0)]" }
    for links in [garbageText(hints: hints), mutated(valid)] {
      await propertyCheck(count: 1_500, input: links) { link in
        // Whatever it accepts, the kernel would have written exactly so.
        if let inode = ProcText.socketInode(fromLink: link) {
          #expect(link == "socket:[\(inode)]", "\(link.debugDescription)")
        }
      }
    }
  }

  // MARK: /proc entries -> process ids

  @Test func processEntriesRoundTrip() async {
    await propertyCheck(count: 500, input: Gen<UInt32>.value(in: 1...UInt32(Int32.max))) { pid in
      #expect(ProcText.processID(procEntry: String(pid)) == pid)
    }
  }

  @Test func processEntryParsesOnlyCanonicalPids() async {
    let hints = ["self", "thread-self", "sys", "net", "1", "42", "0", "2147483648", "4294967295"]
    let valid = Gen<UInt32>.value(in: 1...UInt32(Int32.max)).map { String($0) }
    for names in [garbageText(hints: hints, pieces: 0...4), mutated(valid)] {
      await propertyCheck(count: 1_500, input: names) { name in
        if let pid = ProcText.processID(procEntry: name) {
          #expect(String(pid) == name && pid >= 1 && pid <= UInt32(Int32.max), "\(name.debugDescription)")
        }
      }
    }
  }

  // MARK: /proc/PID/comm

  @Test func commRoundTripsAnyNameTheKernelAllows() async {
    // prctl(PR_SET_NAME) takes any 15 bytes but NUL, newlines and "\r" included.
    let names = Gen<UInt8>.value(in: 1...255).array(of: 0...15)
    await propertyCheck(count: 1_000, input: names) { bytes in
      let file = String(decoding: bytes + [UInt8(ascii: "\n")], as: UTF8.self)
      #expect(ProcText.comm(fromProcFile: file) == String(decoding: bytes, as: UTF8.self))
    }
  }

  @Test func commIsTheFileLessItsFinalNewlineOrNil() async {
    let files = garbageText(hints: ["nginx", "\n", "\r\n", "kworker/0:1-events", ""], pieces: 0...5)
    await propertyCheck(count: 1_500, input: files) { file in
      let comm = ProcText.comm(fromProcFile: file)
      if let comm {
        #expect(Array(comm.utf8) + [UInt8(ascii: "\n")] == Array(file.utf8), "\(file.debugDescription)")
      } else {
        #expect(file.utf8.last != UInt8(ascii: "\n"), "\(file.debugDescription)")
      }
    }
  }

  // MARK: /proc/sys/net/ipv4/tcp_fin_timeout

  @Test func finTimeoutRoundTripsEveryKernelValue() async {
    let seconds = Gen<Int32>.value(in: 0...Int32.max)
    let blank = Gen<Int>.value(in: 0..<blanks.count)
    await propertyCheck(count: 1_000, input: seconds, blank, blank) { seconds, before, after in
      #expect(ProcText.finTimeoutSeconds(fromSysctl: blanks[before] + "\(seconds)" + blanks[after]) == Int(seconds))
    }
  }

  @Test func finTimeoutRejectsNegativeAndOutOfRangeValues() async {
    await propertyCheck(count: 1_000, input: anyWidth(UInt64.self), Gen.bool) { magnitude, negative in
      let text = (negative ? "-" : "") + "\(magnitude)\n"
      let fits = !negative && magnitude <= UInt64(Int32.max)
      #expect(ProcText.finTimeoutSeconds(fromSysctl: text) == (fits ? Int(magnitude) : nil))
    }
  }

  @Test func finTimeoutGarbageIsRejectedOrReadExactly() async {
    let number = #/[ \t\n]*([0-9]+)[ \t\n]*/#.matchingSemantics(.unicodeScalar)
    let valid = Gen<Int32>.value(in: 0...Int32.max).map { "\($0)\n" }
    for texts in [garbageText(hints: ["60", "\n", " ", "-", "0"], pieces: 0...5), mutated(valid)] {
      await propertyCheck(count: 1_500, input: texts) { text in
        let expected = (try? number.wholeMatch(in: text)).flatMap { Int32($0.1) }.map { Int($0) }
        #expect(ProcText.finTimeoutSeconds(fromSysctl: text) == expected, "\(text.debugDescription)")
      }
    }
  }

  // MARK: uname release -> kernel version

  @Test func kernelReleasesParseAndGateAt5_8() async {
    let suffixes = ["", ".0", ".0-91-generic", ".44-fc-v669", "-rc1", "+", ".17-1-amd64", ".x", "-15", "..1"]
    let input = Generator { rng -> Release in
      let major = Int.random(in: 0...12, using: &rng) + (Bool.random(using: &rng) ? 0 : Int.random(in: 0...1_000_000, using: &rng))
      let minor = Int.random(in: 0...20, using: &rng) + (Bool.random(using: &rng) ? 0 : Int.random(in: 0...1_000_000, using: &rng))
      let text = "\(major).\(minor)" + (suffixes.randomElement(using: &rng) ?? "")
      return Release(text: text, major: major, minor: minor)
    }
    await propertyCheck(count: 1_000, input: input) { release in
      let version = ProcText.kernelVersion(ofRelease: release.text)
      #expect(version?.major == release.major && version?.minor == release.minor)
      let tooOld = (release.major, release.minor) < Preflight.minimumKernel
      expectOutcome(tooOld ? .kernelTooOld(release: release.text) : nil) { () throws(FinwaitError) in
        try Preflight.checkKernel(release: release.text)
      }
    }
  }

  @Test func kernelReleaseGarbageIsRejectedOrReadFromItsStart() async {
    let start = #/([0-9]+)\.([0-9]+)/#.matchingSemantics(.unicodeScalar)
    let valid = Gen<UInt16>.value(in: 0...999).map { "\($0 / 100).\($0 % 100).0-generic" }
    let hints = ["5", ".", "15", "6.1", "-generic", "x", "99999999999999999999"]
    for releases in [garbageText(hints: hints, pieces: 0...6), mutated(valid)] {
      await propertyCheck(count: 1_500, input: releases) { release in
        let match = try? start.prefixMatch(in: release)
        let expected = match.flatMap { m in Int(m.1).flatMap { a in Int(m.2).map { b in (a, b) } } }
        let version = ProcText.kernelVersion(ofRelease: release)
        #expect(version?.major == expected?.0 && version?.minor == expected?.1, "\(release.debugDescription)")
        // Unparsable releases are left to libbpf: never refused here.
        if version == nil { #expect(throws: Never.self) { try Preflight.checkKernel(release: release) } }
      }
    }
  }

  // MARK: /proc/self/status -> CapEff

  @Test func capabilityMasksRoundTripAndDecidePrivileges() async {
    let input = Generator { rng -> Status in
      let mask = UInt64.random(in: 0...UInt64.max, using: &rng) & ~(UInt64.random(in: 0...UInt64.max, using: &rng))
      var hex = String(mask, radix: 16)
      if Bool.random(using: &rng) { hex = String(repeating: "0", count: 16 - hex.count) + hex }
      if Bool.random(using: &rng) { hex = hex.uppercased() }
      // A process may call itself anything, "CapEff:" included; the kernel escapes only the newline.
      let name = ["finwait", "CapEff:\tffffffffffffffff", "a\\nCapEff:\t0", "x y"].randomElement(using: &rng) ?? ""
      func other() -> String { String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 16) }
      var lines = ["Name:\t\(name)", "Umask:\t0022", "State:\tR (running)", "Pid:\t42",
                   "CapInh:\t\(other())", "CapPrm:\t\(other())"]
      lines.append("CapEff:\t\(hex)")
      lines += ["CapBnd:\t\(other())", "CapAmb:\t\(other())", "NoNewPrivs:\t0", "Seccomp:\t0"]
      return Status(text: lines.joined(separator: "\n") + "\n", mask: mask)
    }
    await propertyCheck(count: 1_000, input: input, Gen<UInt32>.value(in: 0...2)) { status, uid in
      let caps = ProcText.capabilities(fromStatus: status.text)
      #expect(caps == status.mask)
      let bit = { (n: UInt64) in status.mask & (1 << n) != 0 }
      let allowed = bit(21) || (bit(38) && bit(39))
      let error: FinwaitError? = allowed ? nil : .notPermitted(
        "\(uid == 0 ? "root without capabilities" : "not root (uid \(uid))"): missing CAP_BPF/CAP_PERFMON")
      expectOutcome(error) { () throws(FinwaitError) in try Preflight.checkPrivileges(effectiveUID: uid, capabilities: caps) }
    }
  }

  @Test func capabilityGarbageIsRejectedOrReadFromTheFirstCapEffLine() async {
    let value = #/CapEff:[ \t]*([0-9a-fA-F]{1,16})/#.matchingSemantics(.unicodeScalar)
    let hints = ["CapEff:", "\t", "\n", "CapInh:\t0\n", "000001ffffffffff", "ffffffffffffffffff", "Name:\tx\n", "zz"]
    await propertyCheck(count: 2_000, input: garbageText(hints: hints)) { status in
      let line = status.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
        .map { String($0) }.first { $0.unicodeScalars.starts(with: "CapEff:".unicodeScalars) }
      let expected = line.flatMap { try? value.wholeMatch(in: $0) }.flatMap { UInt64($0.1, radix: 16) }
      #expect(ProcText.capabilities(fromStatus: status) == expected, "\(status.debugDescription)")
    }
  }
}

/// Records an issue unless `body` throws exactly `expected` (nil: nothing).
private func expectOutcome(
  _ expected: FinwaitError?, sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws(FinwaitError) -> Void
) {
  do {
    try body()
    #expect(expected == nil, "expected \(String(describing: expected))", sourceLocation: sourceLocation)
  } catch {
    #expect(error == expected, sourceLocation: sourceLocation)
  }
}

import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `finwait hist` against real sockets: attached connections counted in the
/// kernel, an orphan followed to its end in user space, intervals and `-c`.
final class HistTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  /// The rows of every histogram block headed `label`, one block per
  /// interval that counted it, as (low, high, count).
  private func rows(of label: String, in text: String) -> [(low: Int, high: Int, count: Int)] {
    let lines = text.split(separator: "\n").map(String.init)
    var rows: [(Int, Int, Int)] = []
    for start in lines.indices where lines[start] == label {
      for line in lines.dropFirst(start + 2) {
        let f = line.split(whereSeparator: { $0 == " " || $0 == ":" || $0 == "|" })
        guard f.count >= 4, f[1] == "->", let low = Int(f[0]), let high = Int(f[2]), let count = Int(f[3]) else { break }
        rows.append((low, high, count))
      }
    }
    return rows
  }

  func testAttachedAndOrphanDwellsLandInTheirBucketsByComm() throws {
    let port = Live.port(33)
    let hist = try FinwaitProcess(["hist", "-m", "-i", "2", "--by", "comm", "--port", String(port)])
    // Attached, counted in the kernel: 300 ms, twice.
    for _ in 0..<2 { try DriverProcess("shutdown_wr", port: port, holdMs: 300).finish() }
    // Orphan, handed to timewait, ended by the peer after 600 ms: user space.
    try DriverProcess("close", port: port, holdMs: 600).finish()
    // Ctrl-C drains what is queued and prints the interval so far: the ends
    // may fall in one interval or be split across two, and are summed.
    XCTAssertEqual(try hist.stop(), 0, hist.stderr.text)
    let text = hist.stdout.text
    let attached = rows(of: "path = shutdown_wr, comm = fwdrive", in: text)
    let orphan = rows(of: "path = close, comm = fwdrive", in: text)
    XCTAssertEqual(attached.filter { $0.low == 256 && $0.high == 511 }.map(\.count).reduce(0, +), 2, text)
    XCTAssertEqual(attached.map(\.count).reduce(0, +), 2, text)
    XCTAssertEqual(orphan.filter { $0.low == 512 && $0.high == 1023 }.map(\.count).reduce(0, +), 1, text)
    XCTAssertTrue(text.contains("msecs"), text)
    XCTAssertTrue(hist.stderr.lines.contains { $0.hasPrefix("finwait: Losses: ringbuf_drops 0, map_full 0, lost_ends 0, undecodable 0,") },
                  hist.stderr.text)
  }

  func testCountIntervalsThenExitWithTimestamps() throws {
    let port = Live.port(34)
    let started = Date()
    // Its own namespace too: "nothing ended" must not depend on what else runs.
    let hist = try FinwaitProcess(["hist", "-i", "1", "-c", "2", "-T", "--port", String(port), "--netns", Live.ownNetns])
    XCTAssertEqual(try hist.waitForExit(10), 0, hist.stderr.text)
    XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 1.9)
    let lines = hist.stdout.lines
    XCTAssertEqual(lines.filter { $0.range(of: #"^\d\d:\d\d:\d\d$"#, options: .regularExpression) != nil }.count, 2, "\(lines)")
    XCTAssertEqual(lines.filter { $0 == "(no FIN_WAIT2 ended in this interval)" }.count, 2, "\(lines)")
  }

  func testBadValuesAreUsageErrors() throws {
    for args in [["-i", "0"], ["-c", "0"], ["--by", "container"], ["-m", "-u"]] {
      let hist = try FinwaitProcess(["hist"] + args, waitForAttach: false)
      XCTAssertEqual(try hist.waitForExit(10), 64, "\(args): \(hist.stderr.text)")
      XCTAssertTrue(hist.stderr.text.hasPrefix("finwait: error: "), hist.stderr.text)
    }
  }
}

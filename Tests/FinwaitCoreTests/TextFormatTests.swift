import CFinwaitEvent
import Foundation
import XCTest
@testable import FinwaitCore

final class TextFormatTests: XCTestCase {
  let clock = WallClock(offset: 1_795_000_000_000_000_000)  // 2026-11-18T11:06:40Z

  func testTextLineColumns() {
    let text = TextFormat(clock: clock)
    XCTAssertTrue(text.header.hasPrefix("TIME     PID     COMM"))
    let line = text.line(Fixture.record(.exact(301_200_000), end: .peerFin))
    XCTAssertTrue(line.contains("4242"), line)
    XCTAssertTrue(line.contains("nginx"), line)
    XCTAssertTrue(line.contains("10.0.0.1:41234 > 10.0.0.2:8080"), line)
    XCTAssertTrue(line.contains("301.2ms"), line)
    XCTAssertTrue(line.hasSuffix("peer_fin"), line)
    XCTAssertTrue(text.line(Fixture.record(.pending(observed: 1), end: .timewaitOrphan)).contains("pending"))
    XCTAssertTrue(text.line(Fixture.record(.atLeast(2_000_000_000), end: nil, kind: .stuck)).hasSuffix("STUCK (still in FIN_WAIT2)"))
  }

  func testPathNamesTheSyscallWhenItWasNotClose() {
    var r = Fixture.record(.exact(1), end: .peerFin)
    r.connection.syscall = .dup2
    XCTAssertTrue(TextFormat(clock: clock).line(r).contains(" close(dup2) "))
    r.connection.syscall = .close
    XCTAssertTrue(TextFormat(clock: clock).line(r).contains(" close "))
  }

  func testColumnsLineUpWithTheHeader() {
    let text = TextFormat(clock: clock)
    var r = Fixture.record(.exact(301_200_000), end: .peerFin)
    r.connection.syscall = .close
    let line = text.line(r)
    let header = text.header
    for title in ["PID", "COMM", "PATH", "CONNECTION", "SOCKET", "DWELL", "END"] {
      guard let at = header.range(of: title)?.lowerBound else { return XCTFail(title) }
      let column = header.distance(from: header.startIndex, to: at)
      let before = line[line.index(line.startIndex, offsetBy: column - 1)]
      XCTAssertEqual(before, " ", "\(title) starts after a space: \(line)")
    }
    r.connection.syscall = .closeRange
    XCTAssertTrue(text.line(r).contains(" close(close_range) 10.0.0.1:"), "a too-wide field still ends with a space")
  }

  func testReusedFormatterFollowsTheClockAcrossSeconds() {
    var text = TextFormat(clock: WallClock(offset: 0))
    var line = LineBuffer()
    var times: [String] = []
    for second: UInt64 in [10, 10, 11, 3_600 * 5 + 7] {
      var r = Fixture.record(.exact(1), end: .peerFin)
      r.timestamp = second * 1_000_000_000 + 5
      line.clear()
      text.write(r, to: &line)
      times.append(String(line.text.prefix(8)))
      XCTAssertEqual(line.text, TextFormat(clock: WallClock(offset: 0)).line(r), "a fresh formatter agrees")
    }
    XCTAssertEqual(times[0], times[1])
    XCTAssertNotEqual(times[1], times[2])
    XCTAssertNotEqual(times[2], times[3])
  }
}

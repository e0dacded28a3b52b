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
    XCTAssertEqual(TextFormat.pathText(r), "close(dup2)")
    r.connection.syscall = .close
    XCTAssertEqual(TextFormat.pathText(r), "close")
  }
}

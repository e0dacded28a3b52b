import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// `finwait top` as a user sees it: in an 80x24 tmux pane, with a real
/// connection held in FIN_WAIT2 by a known process; and without a terminal.
final class TopTests: XCTestCase {
  override func setUpWithError() throws {
    try Live.requireLive()
  }

  /// Runs tmux through system(): its server daemonizes and would keep a
  /// spawned process's pipes (and its parent's wait) open.
  @discardableResult
  private func tmux(_ arguments: [String]) throws -> String {
    let output = NSTemporaryDirectory() + "finwait-tmux-\(getpid()).out"
    defer { unlink(output) }
    let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
    let status = system("/usr/bin/tmux \(quoted) >\(output) 2>&1 </dev/null")
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    guard status == 0 else { throw LiveError("tmux \(arguments): status \(status): \(text)") }
    return text
  }

  /// `finwait top ARGS` in a new 80x24 tmux pane, kept after it exits. tmux's
  /// own record of a dead pane's status is not always filled in: the shell
  /// around finwait writes it to a file, then runs `after`.
  private struct Pane {
    let session: String
    let statusFile: String
    let tmux: ([String]) throws -> String

    var screen: String { (try? tmux(["capture-pane", "-p", "-t", session])) ?? "" }
    /// finwait's exit status ("0\n"), once it has exited.
    var status: String? { try? String(contentsOfFile: statusFile, encoding: .utf8) }

    func send(_ key: String) throws { _ = try tmux(["send-keys", "-t", session, key]) }
  }

  private func startTop(_ name: String, _ arguments: String, after: String = "") throws -> Pane {
    let session = "finwait-\(name)-\(getpid())"
    let statusFile = NSTemporaryDirectory() + "finwait-\(name)-status-\(getpid())"
    unlink(statusFile)
    let command = "\(Live.finwait ?? "finwait") top \(arguments); echo $? > \(statusFile)\(after)"
    try tmux(["new-session", "-d", "-s", session, "-x", "80", "-y", "24", command])
    addTeardownBlock { [self] in
      _ = try? tmux(["kill-session", "-t", session])
      unlink(statusFile)
    }
    try tmux(["set-option", "-t", session, "remain-on-exit", "on"])
    return Pane(session: session, statusFile: statusFile, tmux: { try self.tmux($0) })
  }

  func testFullScreenUnderTmuxShowsTheHolderItsPeerAndObeysKeys() throws {
    let port = Live.port(35)
    let pane = try startTop("top", "--port \(port) -i 1")
    func screen() -> String { pane.screen }

    // Attached (its first screen is up) before the connection starts: the
    // tracepoint's view, not the listing at start.
    XCTAssertTrue(waitUntil(10) { screen().contains("PID COMM") }, screen())
    let driver = try DriverProcess("shutdown_wr", port: port, holdMs: 8_000)
    let truth = try driver.truth()
    defer { kill(driver.process.processIdentifier, SIGKILL) }
    let row = "\(truth.ownerPid) fwdrive"
    XCTAssertTrue(waitUntil(10) { screen().contains(row) }, screen())
    let text = screen()
    let lines = text.split(separator: "\n").map(String.init)
    XCTAssertTrue(lines.allSatisfy { $0.count <= 80 })
    XCTAssertTrue(lines.first?.hasPrefix("finwait top ") ?? false, text)
    XCTAssertTrue(text.contains("in FIN_WAIT2: 1 (attached 1, orphaned 0)"), text)
    let line = try XCTUnwrap(lines.first { $0.hasPrefix(row) })
    let fields = line.split(separator: " ")
    XCTAssertEqual(fields[2], "1", "NOW: \(line)")
    XCTAssertEqual(fields[3], "0", "ORPH: \(line)")
    // The server side of the same driver holds CLOSE_WAIT: it is the peer.
    XCTAssertTrue(line.contains("\(truth.ownerPid)/fwdrive"), line)

    try pane.send("s")
    XCTAssertTrue(waitUntil(5) { screen().contains("sort: oldest") }, screen())
    try pane.send("q")
    XCTAssertTrue(waitUntil(5) { pane.status != nil }, "finwait top did not exit on q: \(screen())")
    XCTAssertEqual(pane.status, "0\n", "finwait top exits 0 on q")
    // The alternate screen is gone: the table is not left on the terminal.
    XCTAssertFalse(screen().contains("PID COMM"), screen())
  }

  func testCtrlCQuitsAndGivesTheTerminalBack() throws {
    // After finwait: whether the terminal echoes and is line-buffered again.
    let pane = try startTop("top-c", "--port \(Live.port(37)) -i 1", after: "; stty -a")
    func screen() -> String { pane.screen }
    XCTAssertTrue(waitUntil(10) { screen().contains("PID COMM") }, screen())
    try pane.send("C-c")
    XCTAssertTrue(waitUntil(5) { pane.status != nil }, screen())
    XCTAssertEqual(pane.status, "0\n")
    XCTAssertTrue(waitUntil(5) { screen().contains(" icanon") }, screen())
    let stty = screen()
    let flags = Set(stty.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == ";" }).map(String.init))
    XCTAssertTrue(flags.contains("icanon") && flags.contains("echo"), "terminal restored: \(stty)")
    XCTAssertFalse(stty.contains("PID COMM"), "alternate screen left")
  }

  func testWithoutATerminalItPrintsTheTableEveryInterval() throws {
    let port = Live.port(36)
    let top = try FinwaitProcess(["top", "--port", String(port), "-i", "1", "-c", "2"], waitForAttach: false)
    XCTAssertEqual(try top.waitForExit(15), 0, top.stderr.text)
    XCTAssertTrue(top.stderr.text.contains("stdout is not a terminal"), top.stderr.text)
    XCTAssertEqual(top.stdout.lines.filter { $0.hasPrefix("PID COMM") }.count, 2, top.stdout.text)
    XCTAssertFalse(top.stdout.text.contains("\u{1B}["), "no escape sequences")
  }
}

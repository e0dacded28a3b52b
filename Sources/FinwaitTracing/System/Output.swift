import CFinwaitSystem
import FinwaitCore
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Where modes write lines: stdout and stderr in production, memory in tests.
public protocol LineSink: AnyObject {
  /// The reader went away (EPIPE): nothing more is written, and finwait stops quietly.
  var readerGone: Bool { get }
  func write(_ line: String) throws(FinwaitError)
  /// Writes the buffer and a newline.
  func write(_ line: LineBuffer) throws(FinwaitError)
  /// Writes `text` as it is, without a newline (terminal control sequences).
  func writeRaw(_ text: String) throws(FinwaitError)
  func flush() throws(FinwaitError)
}

/// Lines kept in memory: the output seam of tests, as swift-nio's
/// EmbeddedChannel keeps what a handler wrote.
public final class CapturedLines: LineSink {
  public private(set) var lines: [String] = []
  private var partial = ""
  public private(set) var flushes = 0
  public var readerGone = false

  public init() {}

  public func write(_ line: String) throws(FinwaitError) {
    guard !readerGone else { return }
    lines.append(partial + line)
    partial = ""
  }

  public func write(_ line: LineBuffer) throws(FinwaitError) { try write(line.text) }

  public func writeRaw(_ text: String) throws(FinwaitError) {
    guard !readerGone else { return }
    partial += text
  }

  public func flush() throws(FinwaitError) { flushes += 1 }
}

/// Buffered line output to a C stream. A reader that went away (EPIPE) is
/// remembered rather than thrown, so the tracer can stop quietly.
public final class LineOutput: LineSink {
  private let stream: UnsafeMutablePointer<FILE>
  public private(set) var readerGone = false

  // One thread writes (the loop's); the C streams are process-wide anyway.
  nonisolated(unsafe) public static let standardOutput = LineOutput(stream: fw_stdout())
  nonisolated(unsafe) public static let standardError = LineOutput(stream: fw_stderr())

  init(stream: UnsafeMutablePointer<FILE>) {
    self.stream = stream
  }

  public func write(_ line: String) throws(FinwaitError) {
    guard !readerGone else { return }
    if fputs(line, stream) < 0 || fputc(0x0A, stream) < 0 { try failed() }
  }

  /// Writes `text` as it is, without a newline (terminal control sequences).
  public func writeRaw(_ text: String) throws(FinwaitError) {
    guard !readerGone else { return }
    if fputs(text, stream) < 0 { try failed() }
  }

  /// Writes the buffer and a newline.
  public func write(_ line: LineBuffer) throws(FinwaitError) {
    guard !readerGone else { return }
    let written = line.bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, stream) }
    if written != line.count || fputc(0x0A, stream) < 0 { try failed() }
  }

  public func flush() throws(FinwaitError) {
    guard !readerGone else { return }
    if fflush(stream) != 0 { try failed() }
  }

  private func failed() throws(FinwaitError) {
    let errno = Errno(rawValue: Glibc.errno)
    if errno == .brokenPipe {
      readerGone = true
      return
    }
    throw .output(errno)
  }
}

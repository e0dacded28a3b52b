import CFinwaitBPF
import FinwaitCore
#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Buffered line output to a C stream. A reader that went away (EPIPE) is
/// remembered rather than thrown, so the tracer can stop quietly.
public struct LineOutput {
  private let stream: UnsafeMutablePointer<FILE>
  public private(set) var readerGone = false

  public static var standardOutput: LineOutput { LineOutput(stream: fw_stdout()) }
  public static var standardError: LineOutput { LineOutput(stream: fw_stderr()) }

  init(stream: UnsafeMutablePointer<FILE>) {
    self.stream = stream
  }

  public mutating func write(_ line: String) throws(FinwaitError) {
    guard !readerGone else { return }
    if fputs(line, stream) < 0 || fputc(0x0A, stream) < 0 { try failed() }
  }

  /// Writes `text` as it is, without a newline (terminal control sequences).
  public mutating func writeRaw(_ text: String) throws(FinwaitError) {
    guard !readerGone else { return }
    if fputs(text, stream) < 0 { try failed() }
  }

  /// Writes the buffer and a newline.
  public mutating func write(_ line: LineBuffer) throws(FinwaitError) {
    guard !readerGone else { return }
    let written = line.bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, stream) }
    if written != line.count || fputc(0x0A, stream) < 0 { try failed() }
  }

  public mutating func flush() throws(FinwaitError) {
    guard !readerGone else { return }
    if fflush(stream) != 0 { try failed() }
  }

  private mutating func failed() throws(FinwaitError) {
    let errno = Errno(rawValue: Glibc.errno)
    if errno == .brokenPipe {
      readerGone = true
      return
    }
    throw .output(errno)
  }
}

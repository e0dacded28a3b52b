import FinwaitCore
import Logging

/// swift-log's handler for `finwait serve`: one logfmt line per event
/// (`ts=... level=warning msg="..." key=value ...`, metadata keys sorted), on
/// a line sink (stderr: journald and the container runtime collect it).
public struct LogfmtLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level = .info
  private let sink: SinkBox
  private let clock: @Sendable () -> UInt64
  private let wallClock: WallClock

  /// The loop's single thread is the only writer.
  final class SinkBox: @unchecked Sendable {
    let sink: any LineSink
    var seconds = SecondText(.utcDateTime)
    init(_ sink: any LineSink) { self.sink = sink }
  }

  public init(sink: any LineSink, clock: @escaping @Sendable () -> UInt64, wallClock: WallClock) {
    self.sink = SinkBox(sink)
    self.clock = clock
    self.wallClock = wallClock
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var ts = LineBuffer(capacity: 32)
    ts.append(rfc3339OfMonotonic: clock(), clock: wallClock, cache: &sink.seconds)
    var fields = [("ts", ts.text), ("level", event.level.rawValue), ("msg", event.message.description)]
    let all = metadata.merging(event.metadata ?? [:]) { $1 }
    for key in all.keys.sorted() { fields.append((key, all[key]!.description)) }
    try? sink.sink.write(Logfmt.line(fields))
    try? sink.sink.flush()
  }
}

import CFinwaitEvent

/// Feeds a `SyntheticStream` to a `Consumer` chunk by chunk, pass after pass.
public final class Replay {
  public private(set) var stream: SyntheticStream
  public let consumer: Consumer
  /// Records consumed since the start, warm-up included.
  public private(set) var consumed = 0
  /// The records live in one buffer, as they do in the ring buffer: the
  /// consumer borrows each in place.
  private var buffer: UnsafeMutableBufferPointer<fw_event>
  private var cursor = 0

  public init(stream: SyntheticStream, formatsJSON: Bool) {
    self.stream = stream
    consumer = Consumer(tracingSince: stream.tracingSince, formatsJSON: formatsJSON)
    buffer = .allocate(capacity: stream.records.count)
    _ = buffer.initialize(from: stream.records)
  }

  deinit {
    buffer.deallocate()
  }

  public var recordsPerPass: Int { buffer.count }

  /// Runs `passes` passes' worth of chunks, ticking after each as the
  /// measured runs do, so the tracker's tables reach their steady size.
  public func warmUp(passes: Int, chunk: Int) {
    for _ in 0..<(passes * buffer.count / chunk) {
      prepareChunk(of: chunk)
      run(chunk: chunk)
    }
  }

  /// One chunk and the stuck check after it: what a measured sample does.
  @inline(__always)
  public func run(chunk: Int) {
    consumeChunk(of: chunk)
    tick()
  }

  /// Makes the next `count` records contiguous in the current pass: the rest
  /// of a pass is consumed here, then the stream moves one period on. Kept
  /// out of the measured chunk so every chunk is nothing but consumption.
  public func prepareChunk(of count: Int) {
    guard cursor + count > buffer.count else { return }
    consumeChunk(of: buffer.count - cursor)
    stream.advance()
    _ = buffer.update(fromContentsOf: stream.records)
    cursor = 0
  }

  /// The measured work: `count` records through the consumer. Call
  /// `prepareChunk(of:)` first.
  @inline(__always)
  public func consumeChunk(of count: Int) {
    let end = cursor + count
    while cursor < end {
      consumer.consume(buffer[cursor])
      cursor += 1
    }
    consumed += count
  }

  /// The poll loop's stuck check, at the time of the last record consumed.
  public func tick() {
    guard cursor > 0 else { return }
    consumer.tick(now: buffer[cursor - 1].ts_ns)
  }
}

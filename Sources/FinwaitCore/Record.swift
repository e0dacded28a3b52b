/// How long a connection dwelt in FIN_WAIT2, as far as finwait can know.
public enum Dwell: Sendable, Equatable {
  /// FIN_WAIT2 began and ended while traced.
  case exact(UInt64)
  /// FIN_WAIT2 was still going on (finwait stopped, or it began before
  /// finwait attached): the true dwell is at least this.
  case atLeast(UInt64)
  /// Handed to a timewait socket: FIN_WAIT2 continues out of the tracepoint's
  /// sight for up to the fin timeout. `observed` is only the part spent as a
  /// full socket and must not be read as the dwell.
  case pending(observed: UInt64)

  /// Nanoseconds known to have been spent in FIN_WAIT2.
  public var knownNanoseconds: UInt64 {
    switch self {
    case let .exact(ns), let .atLeast(ns), let .pending(ns): ns
    }
  }
}

/// One line of output: a connection whose FIN_WAIT2 ended (or that finwait
/// stopped watching), or one that crossed the stuck threshold.
public struct Record: Sendable, Equatable {
  public enum Kind: String, Sendable {
    case finWait2 = "fin_wait2"
    case stuck
  }

  public var kind: Kind
  /// CLOCK_MONOTONIC nanoseconds of what this record reports.
  public var timestamp: UInt64
  public var connection: Connection
  /// Orphaned when the record was written (the application may have closed
  /// an attached FIN_WAIT2 socket since it entered).
  public var orphaned: Bool
  public var dwell: Dwell
  /// nil for `stuck` records.
  public var end: End?

  public init(kind: Kind, timestamp: UInt64, connection: Connection, orphaned: Bool, dwell: Dwell, end: End?) {
    self.kind = kind
    self.timestamp = timestamp
    self.connection = connection
    self.orphaned = orphaned
    self.dwell = dwell
    self.end = end
  }

  init(_ event: Event, kind: Kind, at timestamp: UInt64, dwell: Dwell, end: End?) {
    self.init(
      kind: kind, timestamp: timestamp, connection: event.connection,
      orphaned: event.orphanedAtEnd || event.connection.orphanedAtEntry, dwell: dwell, end: end)
  }
}

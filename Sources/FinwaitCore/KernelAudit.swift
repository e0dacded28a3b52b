/// Finds what the BPF program did not see by comparing its per-socket map
/// with sock_diag.
///
/// The kernel does not always run the program: a transition that fires
/// while it runs on the same CPU is skipped (`recursion_misses`), and under
/// setup bursts whole batches of FIN_WAIT1 -> FIN_WAIT2 went unseen without
/// that counter moving (64 of 200,000 held connections, measured). Such a
/// connection sits in the map as FIN_WAIT1 forever: never reported, never
/// stuck. One whose end was skipped stays "in FIN_WAIT2" until finwait exits.
public enum KernelAudit {
  public enum Finding: Sendable, Equatable {
    /// sock_diag shows it in FIN_WAIT2: it got there no later than `by`.
    /// `attached`: it still has an inode (not orphaned).
    case finWait2Missed(by: UInt64, attached: Bool)
    /// Neither in FIN_WAIT1 nor in FIN_WAIT2 as a full socket any more.
    case endMissed
  }

  /// The sock_diag states an audit dumps.
  public static let states: [DiagSocket.State] = [.finWait1, .finWait2]

  /// What is wrong with a map entry, given the full socket (not a timewait
  /// one) its namespace has with its endpoints, if any; nil if nothing is,
  /// or if it is too recent to tell: a transition younger than `grace` may
  /// still be on its way through the program or the ring buffer.
  public static func finding(
    for entry: Event, socket: DiagSocket?, now: UInt64, grace: UInt64 = 2_000_000_000
  ) -> Finding? {
    guard isSettled(entry, now: now, grace: grace) else { return nil }
    let socket = socket.flatMap { $0.isTimewait ? nil : $0 }
    switch (entry.finWait2At, socket?.state) {
    case (nil, .finWait1?), (_?, .finWait2?):
      return nil
    case (nil, .finWait2?):
      guard let socket else { return nil }
      // The last ACK received is, in FIN_WAIT2, the one for our FIN (or
      // later data): FIN_WAIT2 began no later than that.
      let ago = UInt64(socket.lastAckReceivedMilliseconds ?? 0) * 1_000_000
      let by = max(now - min(now, ago), entry.finWait1At ?? 0)
      return .finWait2Missed(by: by, attached: socket.inode != 0)
    default:
      return .endMissed
    }
  }

  /// Whether `entry`'s last transition is `grace` old: an audit can tell
  /// what happened to it.
  public static func isSettled(_ entry: Event, now: UInt64, grace: UInt64 = 2_000_000_000) -> Bool {
    let last = max(entry.timestamp, entry.finWait1At ?? 0, entry.finWait2At ?? 0)
    return now >= last && now - last >= grace
  }

  /// A 64-bit digest of a connection's namespace and endpoints: an audit of 200,000
  /// connections keeps 8 bytes for each socket it dumped, not a DiagSocket.
  /// A collision can only hide a missed end, one time in 2^64 / sockets.
  public static func digest(_ endpoints: Endpoints, netns: UInt32) -> UInt64 {
    var hasher = FNV1a()
    hasher.add(UInt64(netns))
    hasher.add(endpoints.local)
    hasher.add(UInt64(endpoints.localPort) << 16 | UInt64(endpoints.remotePort))
    hasher.add(endpoints.remote)
    return hasher.value
  }
}

/// Fixed and seedless, unlike Swift's Hasher: digests taken at different
/// times must agree.
private struct FNV1a {
  var value: UInt64 = 0xcbf2_9ce4_8422_2325

  mutating func add(_ word: UInt64) {
    for shift in stride(from: 0, to: 64, by: 8) {
      value ^= (word >> UInt64(shift)) & 0xff
      value &*= 0x100_0000_01b3
    }
  }

  mutating func add(_ address: IPAddress) {
    switch address {
    case let .v4(a, b, c, d):
      add(UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d))
    case let .v6(high, low):
      add(high)
      add(low)
    }
  }
}

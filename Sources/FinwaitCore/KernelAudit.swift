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
}

import CFinwaitEvent

extension SyntheticStream {
  typealias Timed = (time: Int64, event: fw_event)

  /// The records of one connection whose FIN went out at `start`, and when
  /// its 4-tuple is free again (after the peer's close for orphans).
  static func plan(
    _ scenario: Scenario, slot: Slot, port: UInt16, at start: Int64, rng: inout SplitMix64
  ) -> (records: [Timed], busyUntil: Int64) {
    var c = PlannedConnection(
      slot: slot, localPort: port, tid: slot.pid + UInt32(rng.below(4)), source: .shutdown(&rng),
      ownerKnown: true, finWait1: start, finWait2: nil, closeWait: nil)
    let remoteRTT = rng.logUniform(20 * us, 20 * ms)
    let localRTT = rng.logUniform(10 * us, 200 * us)

    switch scenario {
    case .shutdownPeerFin, .enterLost:
      let fw2 = start + remoteRTT
      c.finWait2 = fw2
      let leave = c.record(FW_KIND_LEAVE, at: fw2 + rng.logUniform(20 * us, 5 * s), end: FW_END_PEER_FIN)
      if scenario == .enterLost { return ([leave], leave.time) }
      return ([c.record(FW_KIND_ENTER, at: fw2), leave], leave.time)

    case .shutdownLocalPeer:
      let fw2 = start + localRTT
      c.finWait2 = fw2
      c.closeWait = start + localRTT / 2
      let leaveAt = fw2 + rng.logUniform(100 * us, 2 * s)
      let closedAt = leaveAt - rng.logUniform(5 * us, 50 * us)
      return ([
        c.record(FW_KIND_ENTER, at: fw2),
        c.record(FW_KIND_PEER_CLOSE, at: closedAt),
        c.record(FW_KIND_LEAVE, at: leaveAt, end: FW_END_PEER_FIN),
      ], leaveAt)

    case .attachedReset:
      let fw2 = start + remoteRTT
      c.finWait2 = fw2
      let leave = c.record(FW_KIND_LEAVE, at: fw2 + rng.logUniform(300, 50 * us), end: FW_END_RESET)
      return ([c.record(FW_KIND_ENTER, at: fw2), leave], leave.time)

    case .attachedThenClosed:
      let fw2 = start + localRTT
      c.finWait2 = fw2
      c.closeWait = start + localRTT / 2
      let closedAt = fw2 + rng.logUniform(1 * ms, 1 * s)
      let peerClosedAt = closedAt + rng.logUniform(1 * ms, 10 * s)
      return ([
        c.record(FW_KIND_ENTER, at: fw2),
        c.record(FW_KIND_LEAVE, at: closedAt, end: FW_END_TIMEWAIT_ORPHAN, orphanAtEnd: true),
        c.record(FW_KIND_PEER_CLOSE, at: peerClosedAt),
      ], peerClosedAt)

    case .orphanClose, .orphanExit:
      c.source = scenario == .orphanExit ? .exit : .lastReference(&rng)
      let fw2 = start + localRTT
      c.finWait2 = fw2
      c.closeWait = start + localRTT / 2
      let handedOver = fw2 + rng.logUniform(2 * us, 20 * us)
      let peerClosedAt = handedOver + rng.logUniform(1 * ms, 30 * s)
      return ([
        c.record(FW_KIND_LEAVE, at: handedOver, end: FW_END_TIMEWAIT_ORPHAN,
                 orphanAtEntry: true, orphanAtEnd: true),
        c.record(FW_KIND_PEER_CLOSE, at: peerClosedAt),
      ], peerClosedAt)

    case .orphanPeerFin, .orphanLingerReset:
      c.source = .lastReference(&rng)
      let fw2 = start + remoteRTT
      c.finWait2 = fw2
      let (dwell, end) = scenario == .orphanPeerFin
        ? (rng.logUniform(5 * us, 1 * ms), FW_END_PEER_FIN)
        : (rng.logUniform(1 * us, 10 * us), FW_END_RESET)
      let leave = c.record(FW_KIND_LEAVE, at: fw2 + dwell, end: end,
                           orphanAtEntry: true, orphanAtEnd: true)
      return ([leave], leave.time)

    case .unseenFinWait1:
      c.source = .unseen
      c.ownerKnown = false
      c.finWait1 = nil
      c.finWait2 = start
      let leave = c.record(FW_KIND_LEAVE, at: start + rng.logUniform(20 * us, 5 * s), end: FW_END_PEER_FIN)
      return ([c.record(FW_KIND_ENTER, at: start), leave], leave.time)

    case .startedBeforeTracing:
      c.source = .unseen
      c.ownerKnown = false
      c.finWait1 = nil
      let leave = c.record(FW_KIND_LEAVE, at: start, end: FW_END_PEER_FIN)
      return ([leave], leave.time)

    case .stuck:
      let fw2 = start + remoteRTT
      c.finWait2 = fw2
      let leave = c.record(FW_KIND_LEAVE, at: fw2 + rng.uniform(61 * s, 150 * s), end: FW_END_PEER_FIN)
      return ([c.record(FW_KIND_ENTER, at: fw2), leave], leave.time)
    }
  }
}

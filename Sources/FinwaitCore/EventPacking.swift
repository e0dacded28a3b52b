import CFinwaitEvent

extension fw_event {
  /// The kernel record `event` was decoded from, so that it can be kept in
  /// 128 bytes and decoded again when needed. nil when that would not give
  /// back the same event (a task name whose text outgrew the kernel's 16
  /// bytes, facts no record carries): callers keep the event itself then.
  init?(packing event: Event) {
    self.init()
    switch event.kind {
    case .enter: kind = UInt8(FW_KIND_ENTER.rawValue)
    case .inFlight: kind = UInt8(FW_KIND_IN_FLIGHT.rawValue)
    case .peerClose, .leave: return nil  // never kept
    }
    var flags: Int32 = 0
    ts_ns = event.timestamp
    ts_fin_wait1_ns = event.finWait1At ?? 0
    if let finWait2At = event.finWait2At {
      ts_fin_wait2_ns = finWait2At
      flags |= FW_FLAG_FIN_WAIT2_SEEN
      if event.finWait2Inferred { flags |= FW_FLAG_FIN_WAIT2_INFERRED }
    }
    let connection = event.connection
    skaddr = connection.socket
    netns = connection.netns
    path = connection.path.raw
    syscall = connection.syscall.raw
    guard let number = Int16(exactly: connection.syscallNumber) else { return nil }
    syscall_nr = number
    stack_id = connection.stackID ?? -1
    if connection.orphanedAtEntry { flags |= FW_FLAG_ORPHAN_AT_ENTRY }
    if event.orphanedAtEnd { flags |= FW_FLAG_ORPHAN_AT_END }
    if let owner = connection.owner {
      guard let name = owner.kernelComm else { return nil }
      flags |= FW_FLAG_OWNER_KNOWN
      tgid = owner.pid
      tid = owner.tid
      cgroup_id = owner.cgroupID
      comm = name
    }
    self.flags = UInt8(flags)
    if let peer = event.peer {
      ts_peer_close_wait_ns = peer.closeWaitSince ?? 0
      peer_netns = peer.netns
    }
    let endpoints = connection.endpoints
    family = endpoints.local.kernelFamily
    sport = endpoints.localPort
    dport = endpoints.remotePort
    withUnsafeMutableBytes(of: &saddr) { endpoints.local.copyNetworkOrder(to: $0) }
    withUnsafeMutableBytes(of: &daddr) { endpoints.remote.copyNetworkOrder(to: $0) }
    // What a decoded record can hold; anything else would not come back.
    guard endpoints.local.family == endpoints.remote.family,
      event.finWait1At != 0, !event.finWait2Inferred || event.finWait2At != nil,
      event.peer.map({ $0.closedAt == nil && $0.owner == nil && ($0.closeWaitSince ?? 0) != 0 }) ?? true
    else { return nil }
    assert((try? Event(decoding: self)) == event, "packing is not exact for \(event)")
  }
}

extension IPAddress {
  /// AF_INET or AF_INET6.
  var kernelFamily: UInt16 { family == .ipv4 ? 2 : 10 }

  /// The inverse of `init(family:networkOrder:)`; `bytes` holds 16 bytes.
  func copyNetworkOrder(to bytes: UnsafeMutableRawBufferPointer) {
    switch self {
    case let .v4(a, b, c, d):
      bytes[0] = a
      bytes[1] = b
      bytes[2] = c
      bytes[3] = d
    case let .v6(high, low):
      for i in 0..<8 {
        bytes[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i)))
        bytes[i + 8] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i)))
      }
    }
  }
}

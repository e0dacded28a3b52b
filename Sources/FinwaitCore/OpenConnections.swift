import CFinwaitEvent

/// Attached connections sitting in FIN_WAIT2, by socket address.
///
/// Each is kept as the 128-byte kernel record it was decoded from, in
/// fixed-size chunks, with a small index: at 200,000 held connections a
/// dictionary of decoded `Event`s cost 866 bytes per connection (measured),
/// because a dictionary keeps 2.6 buckets per entry at that size and an
/// `Event` is over 250 bytes.
struct OpenConnections {
  private struct Entry {
    /// In `packed`, or `unpackedSlot`: the event is in `unpacked`.
    var slot: UInt32
    var stuckReported = false
  }

  private static let unpackedSlot = UInt32.max

  private var index: [UInt64: Entry] = [:]
  private var packed = Slab<fw_event>()
  /// The rare events packing cannot give back exactly.
  private var unpacked: [UInt64: Event] = [:]
  /// Peer facts learnt after the connection entered (its close, its owner).
  private var peers: [UInt64: Peer] = [:]

  var count: Int { index.count }

  /// Adds `event`, replacing and returning what `socket` held.
  @discardableResult
  mutating func insert(_ event: Event) -> (event: Event, stuckReported: Bool)? {
    let socket = event.connection.socket
    let previous = remove(socket)
    if let raw = fw_event(packing: event) {
      index[socket] = Entry(slot: packed.insert(raw))
    } else {
      unpacked[socket] = event
      index[socket] = Entry(slot: Self.unpackedSlot)
    }
    return previous
  }

  /// Removes `socket`'s connection, with every peer fact learnt since it entered.
  @discardableResult
  mutating func remove(_ socket: UInt64) -> (event: Event, stuckReported: Bool)? {
    guard let entry = index.removeValue(forKey: socket) else { return nil }
    var event: Event
    if entry.slot == Self.unpackedSlot {
      guard let kept = unpacked.removeValue(forKey: socket) else { return nil }
      event = kept
    } else {
      guard let decoded = try? Event(decoding: packed[entry.slot]) else { return nil }
      event = decoded
      packed.remove(entry.slot)
    }
    if !peers.isEmpty, let peer = peers.removeValue(forKey: socket) {
      event.peer = peer
    }
    return (event, entry.stuckReported)
  }

  /// When `socket`'s connection entered FIN_WAIT2, if it is here.
  func enteredAt(_ socket: UInt64) -> UInt64? {
    guard let entry = index[socket] else { return nil }
    if entry.slot == Self.unpackedSlot { return unpacked[socket]?.enteredAt }
    let raw = packed[entry.slot]
    return Int32(raw.flags) & FW_FLAG_FIN_WAIT2_SEEN != 0 ? raw.ts_fin_wait2_ns : raw.ts_ns
  }

  /// The connection on `socket`, as it is known now.
  func event(_ socket: UInt64) -> Event? {
    guard let entry = index[socket] else { return nil }
    var event: Event
    if entry.slot == Self.unpackedSlot {
      guard let kept = unpacked[socket] else { return nil }
      event = kept
    } else {
      guard let decoded = try? Event(decoding: packed[entry.slot]) else { return nil }
      event = decoded
    }
    if !peers.isEmpty, let peer = peers[socket] { event.peer = peer }
    return event
  }

  /// Adds what a peer's close tells; false if `socket` holds no connection
  /// between `endpoints`.
  mutating func merge(_ peer: Peer, into socket: UInt64, endpoints: Endpoints) -> Bool {
    guard let event = event(socket), event.connection.endpoints == endpoints else { return false }
    peers[socket] = (event.peer ?? peer).merged(with: peer)
    return true
  }

  /// The connection entered at `enteredAt` on `socket`, marked as reported
  /// stuck; nil if it is gone or was reported already.
  mutating func markStuck(_ socket: UInt64, enteredAt: UInt64) -> Event? {
    guard let entry = index[socket], !entry.stuckReported, self.enteredAt(socket) == enteredAt else { return nil }
    index[socket]?.stuckReported = true
    return event(socket)
  }

  /// Every connection, oldest entry first.
  var byEntry: [Event] {
    index.keys.compactMap { event($0) }.sorted { $0.enteredAt < $1.enteredAt }
  }

  mutating func removeAll() {
    index.removeAll()
    packed.removeAll()
    unpacked.removeAll()
    peers.removeAll()
  }
}

extension Event {
  /// When FIN_WAIT2 began: its own timestamp for an `enter` that lacks it.
  var enteredAt: UInt64 { finWait2At ?? timestamp }
}

/// Fixed-size chunks with a free list: no element ever moves, growth adds a
/// chunk instead of copying everything into an array twice the size, and
/// steady-state inserts and removals allocate nothing.
struct Slab<Element> {
  private static var chunkSize: Int { 1024 }
  private var chunks: [[Element]] = []
  private var free: [UInt32] = []

  mutating func insert(_ element: Element) -> UInt32 {
    if let slot = free.popLast() {
      self[slot] = element
      return slot
    }
    if chunks.last.map({ $0.count == Self.chunkSize }) ?? true {
      chunks.append([])
      chunks[chunks.count - 1].reserveCapacity(Self.chunkSize)
    }
    chunks[chunks.count - 1].append(element)
    return UInt32((chunks.count - 1) * Self.chunkSize + chunks[chunks.count - 1].count - 1)
  }

  /// The slot's element stays until it is reused; it is no longer live.
  mutating func remove(_ slot: UInt32) {
    free.append(slot)
  }

  subscript(slot: UInt32) -> Element {
    get { chunks[Int(slot) / Self.chunkSize][Int(slot) % Self.chunkSize] }
    set { chunks[Int(slot) / Self.chunkSize][Int(slot) % Self.chunkSize] = newValue }
  }

  mutating func removeAll() {
    chunks.removeAll()
    free.removeAll()
  }
}

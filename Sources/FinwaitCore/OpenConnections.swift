import CFinwaitEvent

/// Attached connections sitting in FIN_WAIT2, by socket address.
///
/// Each is kept as the 128-byte kernel record it was decoded from, in
/// fixed-size chunks, with a small index: at 200,000 held connections a
/// dictionary of decoded `Event`s cost 866 bytes per connection (measured),
/// because a dictionary keeps 2.6 buckets per entry at that size and an
/// `Event` is over 250 bytes.
struct OpenConnections {
  /// 4 bytes: with 200,000 connections the index has 2^19 buckets.
  private struct Entry {
    private var bits: UInt32

    init(slot: UInt32) {
      bits = slot
    }

    /// In `packed`, or `unpackedSlot`: the event is in `unpacked`.
    var slot: UInt32 { bits & ~Self.stuckBit }

    var stuckReported: Bool {
      get { bits & Self.stuckBit != 0 }
      set { bits = newValue ? bits | Self.stuckBit : bits & ~Self.stuckBit }
    }

    private static let stuckBit: UInt32 = 1 << 31
  }

  /// Real slots stay far below it: one per open connection, bounded by the kernel map.
  private static let unpackedSlot = UInt32.max >> 1

  private var index: [UInt64: Entry] = [:]
  private var packed = Slab<fw_event>()
  /// The rare events packing cannot give back exactly.
  private var unpacked: [UInt64: Event] = [:]
  /// Peer facts learnt after the connection entered (its close, its owner).
  private var peers: [UInt64: Peer] = [:]

  var count: Int { index.count }

  /// A connection taken out: what leaving FIN_WAIT2 needs is read
  /// directly; the whole event is decoded only if asked for.
  struct Removed {
    fileprivate enum Kept {
      case packed(fw_event)
      /// Rare (see `unpacked`): boxed, so the usual case stays small to copy.
      indirect case unpacked(Event)
    }

    fileprivate var kept: Kept
    /// Every peer fact learnt since it entered.
    var peer: Peer?
    var stuckReported: Bool

    var finWait2At: UInt64? {
      switch kept {
      case let .unpacked(event): return event.finWait2At
      case let .packed(raw): return raw.finWait2At
      }
    }

    var event: Event? {
      var event: Event?
      switch kept {
      case let .unpacked(kept): event = kept
      case let .packed(raw): event = try? Event(decoding: raw)
      }
      event?.peer = peer
      return event
    }
  }

  /// Adds `event`, replacing what `socket` held.
  mutating func insert(_ event: Event) {
    let socket = event.connection.socket
    let entry: Entry
    if let raw = fw_event(packing: event) {
      entry = Entry(slot: packed.insert(raw))
    } else {
      unpacked[socket] = event
      entry = Entry(slot: Self.unpackedSlot)
    }
    // One hash on the usual path (nothing there before).
    guard let replaced = index.updateValue(entry, forKey: socket) else { return }
    if replaced.slot != Self.unpackedSlot {
      packed.remove(replaced.slot)
    } else if entry.slot != Self.unpackedSlot {
      unpacked.removeValue(forKey: socket)
    }
    if !peers.isEmpty { peers.removeValue(forKey: socket) }
  }

  /// Takes `socket`'s connection out.
  @discardableResult
  mutating func remove(_ socket: UInt64) -> Removed? {
    guard let entry = index.removeValue(forKey: socket) else { return nil }
    var removed: Removed
    if entry.slot == Self.unpackedSlot {
      guard let event = unpacked.removeValue(forKey: socket) else { return nil }
      removed = Removed(kept: .unpacked(event), peer: event.peer, stuckReported: entry.stuckReported)
    } else {
      let raw = packed[entry.slot]
      packed.remove(entry.slot)
      removed = Removed(kept: .packed(raw), peer: Peer(seenBy: raw), stuckReported: entry.stuckReported)
    }
    if !peers.isEmpty, let peer = peers.removeValue(forKey: socket) {
      removed.peer = peer
    }
    return removed
  }

  /// When `socket`'s connection entered FIN_WAIT2, if it is here.
  func enteredAt(_ socket: UInt64) -> UInt64? {
    guard let entry = index[socket] else { return nil }
    if entry.slot == Self.unpackedSlot { return unpacked[socket]?.enteredAt }
    let raw = packed[entry.slot]
    return raw.finWait2At ?? raw.ts_ns
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
    guard let entry = index[socket] else { return false }
    let known: Peer?
    if entry.slot == Self.unpackedSlot {
      guard let event = unpacked[socket], event.connection.endpoints == endpoints else { return false }
      known = event.peer
    } else {
      // Only the endpoints and the peer: no whole decode per peer close.
      let raw = packed[entry.slot]
      guard Endpoints(kernel: raw) == endpoints else { return false }
      known = Peer(seenBy: raw)
    }
    peers[socket] = ((peers.isEmpty ? nil : peers[socket]) ?? known ?? peer).merged(with: peer)
    return true
  }

  /// The connection entered at `enteredAt` on `socket`, marked as reported
  /// stuck; nil if it is gone or was reported already.
  mutating func markStuck(_ socket: UInt64, enteredAt: UInt64) -> Event? {
    guard let i = index.index(forKey: socket), !index.values[i].stuckReported,
      self.enteredAt(socket) == enteredAt
    else { return nil }
    // Through the index, not `index[socket]?.` (its accessor allocates).
    index.values[i].stuckReported = true
    return event(socket)
  }

  func forEach(_ body: (Event) -> Void) {
    for socket in index.keys {
      if let event = event(socket) { body(event) }
    }
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
  public var enteredAt: UInt64 { finWait2At ?? timestamp }
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

/// A first-in first-out queue over an array, compacted as it drains, so
/// steady-state appends and removals do not allocate.
struct FIFO<Element> {
  private var storage: [Element] = []
  private var head = 0

  var first: Element? { head < storage.count ? storage[head] : nil }
  var count: Int { storage.count - head }

  mutating func append(_ element: Element) {
    storage.append(element)
  }

  mutating func removeFirst() {
    head += 1
    if head == storage.count {
      storage.removeAll(keepingCapacity: true)
      head = 0
    } else if head >= 1024 && head * 2 >= storage.count {
      storage.removeFirst(head)
      head = 0
    }
  }

  mutating func removeAll() {
    storage.removeAll(keepingCapacity: true)
    head = 0
  }

  /// Keeps, in order, only the elements `isIncluded` accepts; in place, so
  /// it allocates nothing.
  mutating func retain(where isIncluded: (Element) -> Bool) {
    var kept = 0
    for i in head..<storage.count where isIncluded(storage[i]) {
      storage[kept] = storage[i]
      kept += 1
    }
    storage.removeSubrange(kept...)
    head = 0
  }
}

/// A set that forgets its oldest members beyond `capacity`.
struct BoundedSet<Element: Hashable> {
  private var members = Set<Element>()
  private var order = FIFO<Element>()
  let capacity: Int

  init(capacity: Int) {
    self.capacity = capacity
  }

  var count: Int { members.count }

  mutating func insert(_ element: Element) {
    guard members.insert(element).inserted else { return }
    order.append(element)
    while order.count > capacity, let oldest = order.first {
      order.removeFirst()
      members.remove(oldest)
    }
  }

  /// Removes `element`; true if it was there.
  mutating func remove(_ element: Element) -> Bool {
    members.remove(element) != nil
  }
}

/// A dictionary that forgets its oldest entries beyond `capacity`.
struct BoundedDictionary<Key: Hashable, Value> {
  private var entries: [Key: (value: Value, serial: UInt64)] = [:]
  /// Insertion order; an entry removed or replaced since leaves a stale
  /// serial here, which eviction skips.
  private var order = FIFO<(key: Key, serial: UInt64)>()
  private var nextSerial: UInt64 = 0
  let capacity: Int

  init(capacity: Int) {
    self.capacity = capacity
  }

  var count: Int { entries.count }
  var isEmpty: Bool { entries.isEmpty }

  mutating func set(_ value: Value, for key: Key) {
    nextSerial += 1
    entries[key] = (value, nextSerial)
    order.append((key, nextSerial))
    while order.count > capacity, let oldest = order.first {
      order.removeFirst()
      if entries[oldest.key]?.serial == oldest.serial { entries.removeValue(forKey: oldest.key) }
    }
  }

  mutating func removeValue(forKey key: Key) -> Value? {
    entries.removeValue(forKey: key)?.value
  }
}

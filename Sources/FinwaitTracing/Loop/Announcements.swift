import CFinwaitEvent
import FinwaitCore

/// `--stack` announcements that a source's own thread took as the kernel
/// woke it, each with the closer's maps read right then: handed to the loop
/// in order at its next drain, the maps pinned (`PinnedImages`) until then.
/// The `Tracer` takes them from its reader thread; a scripted source from
/// its script.
public final class Announcements {
  /// One announcement, what the kernel saw of the closer's files (nil: a
  /// source that does not say), and the closer's maps as read (nil: already
  /// gone).
  public typealias Each = (fw_event, StackOrigin?, _ maps: UnsafeBufferPointer<UInt8>?) -> Void
  /// Calls `each` with every announcement taken since the last call.
  public typealias Take = (_ each: Each) -> Void
  private let take: Take
  private var pending: [fw_event] = []
  private var images: PinnedImages?

  public init(take: @escaping Take) {
    self.take = take
  }

  /// The processes stacks are named from: pinned maps, else `processes`.
  public func images(over processes: any ProcessImages) -> any ProcessImages {
    let images = PinnedImages(fallback: processes)
    images.collect = { [unowned self] in self.collect() }
    self.images = images
    return images
  }

  /// Moves what was taken since into `pending`, pinning each closer's maps
  /// and what the kernel saw of its files.
  private func collect() {
    guard let images else { return }
    take { event, origin, maps in
      pending.append(event)
      if let maps { images.pin(maps: String(decoding: maps, as: UTF8.self), of: event.tgid) }
      if let origin { images.pin(origin: origin, ofStack: event.stack_id) }
    }
  }

  /// Hands `body` every announcement taken so far, then unpins their maps.
  /// Returns how many.
  public func deliver(_ body: (borrowing fw_event) -> Void) -> Int {
    guard let images else { return 0 }
    var n = 0
    collect()
    while !pending.isEmpty {
      let batch = pending
      pending.removeAll(keepingCapacity: true)
      for event in batch { body(event) }  // naming a stack may collect more
      n += batch.count
    }
    if n > 0 { images.unpinAll() }
    return n
  }
}

/// Processes as they were when the kernel announced a stack of theirs: the
/// maps a source read on that wakeup (the `Tracer`'s own thread), else
/// `fallback` as it is now. A closer that exits a millisecond after its FIN
/// is often gone before the loop gets to its announcement; its maps, read
/// at once, are not, and its files are found from them (`ProcfsImages.open`).
/// A closer gone even before that wakeup leaves the kernel's view of its
/// files (`origin(ofStack:)`).
public final class PinnedImages: ProcessImages {
  private let fallback: any ProcessImages
  private var pinned: [UInt32: String] = [:]
  private var origins: [Int16: StackOrigin] = [:]
  /// Called before a lookup: lets the source pin what it read meanwhile.
  var collect: () -> Void = {}

  public init(fallback: any ProcessImages) {
    self.fallback = fallback
  }

  /// `text` is `pid`'s maps until `unpinAll`.
  public func pin(maps text: String, of pid: UInt32) {
    pinned[pid] = text
  }

  /// What the kernel saw of stack `id`'s files, until `unpinAll`.
  public func pin(origin: StackOrigin, ofStack id: Int16) {
    origins[id] = origin
  }

  /// After the announcements that pinned them were handled.
  public func unpinAll() {
    pinned.removeAll(keepingCapacity: true)
    origins.removeAll(keepingCapacity: true)
  }

  public func maps(of pid: UInt32) -> String? {
    collect()
    return pinned[pid] ?? fallback.maps(of: pid)
  }

  public func memory(of pid: UInt32, at address: UInt64, count: Int) -> [UInt8]? {
    fallback.memory(of: pid, at: address, count: count)
  }

  public func open(_ mappings: [Mapping], pid: UInt32) -> [UInt64: any MappedFile] {
    fallback.open(mappings, pid: pid)
  }

  public func open(path: String) -> OpenedFile? { fallback.open(path: path) }

  public func origin(ofStack id: Int16) -> StackOrigin? {
    collect()
    return origins[id] ?? fallback.origin(ofStack: id)
  }

  public var ownProcess: UInt32 { fallback.ownProcess }
}

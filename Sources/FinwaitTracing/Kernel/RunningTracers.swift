import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore
import SystemPackage

/// One finwait tracer another process runs on this node (`finwait trace`,
/// `serve`, `hist`, `top`), seen through its maps, which are only read: the
/// per-socket map says how each connection still in FIN_WAIT2 got there,
/// and with `--stack` its stacks map names the call site.
public final class RunningTracer: StackSource {
  /// Its own allocation: the C calls take a pointer while a walk is on.
  private let maps: UnsafeMutablePointer<fw_running>
  /// Names its stack ids; ids are the tracer's own, never reused.
  private(set) lazy var stacks = CallStacks(tracer: self)

  init(_ found: fw_running) {
    maps = .allocate(capacity: 1)
    maps.initialize(to: found)
  }

  deinit {
    fw_running_close(maps)
    maps.deallocate()
  }

  /// The per-socket map's id: one per tracer.
  public var id: UInt32 { maps.pointee.socks_id }

  public func stack(_ id: Int16) -> [UInt64] {
    var ips = [UInt64](repeating: 0, count: Int(FW_STACK_DEPTH))
    let n = fw_running_stack(maps, id, &ips, Int32(ips.count))
    return n > 0 ? Array(ips.prefix(Int(n))) : []
  }

  public func stackTop(_ id: Int16) -> [UInt64] {
    var note = fw_stack_note()
    guard fw_running_stack_note(maps, id, &note) == 0 else { return [] }
    let words = withUnsafeBytes(of: note.top) { Array($0.bindMemory(to: UInt64.self)) }
    return words.allSatisfy { $0 == 0 } ? [] : words
  }

  /// Every entry of the per-socket map, as stored.
  func forEachTracked(_ body: (fw_event) -> Void) {
    withoutActuallyEscaping(body) { body in
      var box = body
      withUnsafeMutablePointer(to: &box) { ctx in
        _ = fw_running_tracked(maps, { ctx, raw in
          guard let ctx, let raw else { return 0 }
          ctx.assumingMemoryBound(to: ((fw_event) -> Void).self).pointee(raw.pointee)
          return 0
        }, ctx)
      }
    }
  }
}

/// The finwait tracers running on this node, and what they saw of each
/// connection in FIN_WAIT2, read once per doctor run.
public final class RunningTracers {
  /// At most this many tracers are read (one per finwait process).
  static let limit = 16
  private var tracers: [UInt32: RunningTracer] = [:]
  private var seen: [Key: TracedClose] = [:]

  struct Key: Hashable {
    var netns: UInt32
    var endpoints: Endpoints
  }

  public init() {}

  /// How many tracers the last `refresh` found.
  public var count: Int { tracers.count }

  /// Finds the tracers running now (keeping those already open) and reads
  /// their per-socket maps. Throws without CAP_SYS_ADMIN.
  public func refresh() throws(FinwaitError) {
    var found = [fw_running](repeating: fw_running(), count: Self.limit)
    let n = fw_running_find(&found, Int32(Self.limit))
    guard n >= 0 else {
      let errno = Errno(rawValue: -n)
      if errno == .notPermitted || errno == .permissionDenied {
        throw .notPermitted("reading the maps of a running finwait trace needs CAP_SYS_ADMIN")
      }
      throw .bpf(stage: "find a running tracer of", errno: errno)
    }
    var current: [UInt32: RunningTracer] = [:]
    for i in 0..<Int(n) {
      if let kept = tracers[found[i].socks_id] {
        fw_running_close(&found[i])
        current[kept.id] = kept
      } else {
        current[found[i].socks_id] = RunningTracer(found[i])
      }
    }
    tracers = current
    seen.removeAll(keepingCapacity: true)
    for tracer in tracers.values.sorted(by: { $0.id < $1.id }) {
      tracer.forEachTracked { raw in
        guard var traced = TracedClose(entry: raw), let endpoints = Endpoints(kernel: raw) else { return }
        if raw.stack_id >= 0 { traced.stack = tracer.stacks.stack(raw.stack_id, pid: traced.closer?.pid) }
        let key = Key(netns: raw.netns, endpoints: endpoints)
        // Two tracers see the same connection: the one that named its call site.
        if seen[key]?.stack == nil { seen[key] = traced }
      }
    }
  }

  /// What a running tracer saw of the connection `endpoints` (its own view) in `netns`.
  public func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose? {
    seen[Key(netns: netns, endpoints: endpoints)]
  }
}

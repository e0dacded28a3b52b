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

  public func stack(_ id: Int16) -> [UInt64] { Self.frames { fw_running_stack(maps, id, $0, $1) } }

  public func stackTop(_ id: Int16) -> [UInt64] { Self.words { fw_running_stack_note(maps, id, $0) } }

  /// Every entry of the per-socket map, as stored. Returns how many, or -errno.
  func forEachTracked(_ body: (fw_event) -> Void) -> Int32 {
    EntryVisitor.walk({ fw_running_tracked(maps, $0, $1) }, body)
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

  /// Finds the tracers running now (keeping those already open) and reads
  /// their per-socket maps. Throws without CAP_SYS_ADMIN; returns what could
  /// not be read (a tracer of another finwait version, a map walk refused).
  public func refresh() throws(FinwaitError) -> [String] {
    var found = [fw_running](repeating: fw_running(), count: Self.limit)
    var otherLayout: Int32 = 0
    let n = fw_running_find(&found, Int32(Self.limit), &otherLayout)
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
    var problems: [String] = []
    if otherLayout > 0 {
      problems.append("\(otherLayout) running finwait tracer\(otherLayout == 1 ? " is" : "s are") of another version "
        + "(its record is laid out differently) and not read")
    }
    for tracer in tracers.values.sorted(by: { $0.id < $1.id }) {
      let read = tracer.forEachTracked { raw in
        guard var traced = TracedClose(entry: raw), let endpoints = Endpoints(kernel: raw) else { return }
        if raw.stack_id >= 0 {
          let stack = tracer.stacks.stack(raw.stack_id, pid: traced.closer?.pid)
          traced.stack = stack.frames.isEmpty ? nil : stack
        }
        let key = Key(netns: raw.netns, endpoints: endpoints)
        // Two tracers see the same connection: the one that named its call site.
        if seen[key]?.stack == nil { seen[key] = traced }
      }
      if read < 0 {
        problems.append("the map of a running finwait tracer (map id \(tracer.id)) cannot be read: \(Errno(rawValue: -read))")
      }
    }
    return problems
  }

  /// What a running tracer saw of the connection `endpoints` (its own view) in `netns`.
  public func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose? {
    seen[Key(netns: netns, endpoints: endpoints)]
  }
}

import CFinwaitBPF
import FinwaitCore
import SystemPackage

/// The loaded and attached BPF program, and the ring buffer it feeds.
/// Detached and freed on `stop()` or deinit.
public final class Tracer {
  public struct Options: Sendable {
    public var pid: UInt32 = 0
    public var port: UInt16 = 0
    /// 0, 4 or 6.
    public var family: Int = 0
    public var comm: String?
    /// 0: every network namespace.
    public var netns: UInt32 = 0
    /// Follow local peers' CLOSE_WAIT (a map lookup per passive close).
    public var followPeers = true
    /// Ring buffer size. 4 MiB holds 30,840 records (128 bytes + 8-byte
    /// header): half a second of a burst of 58,000 FIN_WAIT2 entries a second
    /// (measured: 1 MiB dropped records in such a burst), while the consumer
    /// is woken at `wakeupBytes` and drains every 100 ms.
    public var ringBufferBytes: UInt32 = 4 << 20
    /// Sockets on the FIN path tracked at once; beyond it, counted as map_full.
    public var maxTracked: UInt32 = 65_536
    /// Backlog that forces a wakeup before the drain timer.
    public var wakeupBytes: UInt64 = 256 * 1024
    public var btfPath: String?
    /// `finwait hist`: full sockets' dwells counted in the kernel, by this
    /// breakdown, in slots of this many nanoseconds; nil: every end is a record.
    public var histogram: (by: Breakdown, unitNanoseconds: UInt64)?
    /// `--stack`: capture the closer's user stack at FIN_WAIT1.
    public var captureStacks = false

    public init() {}

    /// The same filters, for records that do not come through the BPF
    /// program (connections listed at start).
    public var recordFilter: RecordFilter {
      RecordFilter(
        pid: pid == 0 ? nil : pid, comm: comm, port: port == 0 ? nil : port,
        family: family == 0 ? nil : family, netns: netns == 0 ? nil : netns)
    }
  }

  /// Receives each raw record; lives as long as the tracer.
  private final class Consumer {
    let handle: (borrowing fw_event) -> Void
    init(_ handle: @escaping (borrowing fw_event) -> Void) { self.handle = handle }
  }

  private var tracer: OpaquePointer?
  private let consumer: Consumer

  public init(options: Options, onRecord: @escaping (borrowing fw_event) -> Void) throws(FinwaitError) {
    consumer = Consumer(onRecord)
    var o = fw_options()
    o.tgid = options.pid
    o.port = options.port
    o.family = options.family == 4 ? 2 : options.family == 6 ? 10 : 0
    o.netns = options.netns
    o.follow_peers = options.followPeers ? 1 : 0
    if let comm = options.comm {
      o.filter_comm = 1
      withUnsafeMutableBytes(of: &o.comm) { dst in
        let bytes = Array(comm.utf8.prefix(dst.count - 1))
        dst.copyBytes(from: bytes)
      }
    }
    o.ringbuf_bytes = options.ringBufferBytes
    o.max_tracked = options.maxTracked
    o.wakeup_bytes = options.wakeupBytes
    o.capture_stack = options.captureStacks ? 1 : 0
    if let histogram = options.histogram {
      o.hist_mode = 1
      o.hist_by = histogram.by.raw
      o.hist_unit_ns = UInt32(histogram.unitNanoseconds)
    }

    var failed = FW_STAGE_NONE
    var handle: OpaquePointer?
    let context = Unmanaged.passUnretained(consumer).toOpaque()
    let err: Int32 = withOptionalCString(options.btfPath) { btf in
      o.btf_path = btf
      return fw_tracer_start(&o, { ctx, event in
        guard let ctx, let event else { return 0 }
        Unmanaged<Consumer>.fromOpaque(ctx).takeUnretainedValue().handle(event.pointee)
        return 0
      }, context, &handle, &failed)
    }
    if err != 0 {
      let errno = Errno(rawValue: -err)
      if errno == .notPermitted || errno == .permissionDenied {
        throw .notPermitted("the kernel refused to \(Self.stageName(failed)) the BPF program (\(errno))")
      }
      throw .bpf(stage: Self.stageName(failed), errno: errno)
    }
    tracer = handle
  }

  static func stageName(_ stage: fw_stage) -> String {
    switch stage {
    case FW_STAGE_OPEN: "open"
    case FW_STAGE_LOAD: "load"
    case FW_STAGE_ATTACH: "attach"
    case FW_STAGE_RINGBUF: "set up the ring buffer of"
    default: "start"
    }
  }

  /// Waits up to `timeoutMilliseconds`, then hands every queued record to the
  /// consumer. Returns how many it consumed; a signal returns 0.
  @discardableResult
  public func drain(timeoutMilliseconds: Int32) throws(FinwaitError) -> Int {
    guard let tracer else { return 0 }
    let n = fw_tracer_drain(tracer, timeoutMilliseconds)
    if n == -Errno.interrupted.rawValue { return 0 }
    if n < 0 { throw .bpf(stage: "poll", errno: Errno(rawValue: -n)) }
    return Int(n)
  }

  public var counters: KernelCounters {
    guard let tracer else { return KernelCounters() }
    var raw = fw_counters()
    fw_tracer_counters(tracer, &raw)
    return KernelCounters(raw, recursionMisses: fw_tracer_recursion_misses(tracer))
  }

  /// Stops new records; what is queued can still be drained.
  public func detach() {
    if let tracer { fw_tracer_detach(tracer) }
  }

  /// Takes the histograms the kernel counted since the last call into `into`.
  public func takeHistograms(into intervals: inout IntervalHistograms) {
    guard let tracer else { return }
    final class Box {
      var intervals: IntervalHistograms
      init(_ intervals: IntervalHistograms) { self.intervals = intervals }
    }
    let box = Box(intervals)
    fw_tracer_take_hists(tracer, { ctx, key, hist in
      guard let ctx, let key, let hist else { return 0 }
      let box = Unmanaged<Box>.fromOpaque(ctx).takeUnretainedValue()
      withUnsafeBytes(of: hist.pointee.slots) { box.intervals.add(kernel: key.pointee, slots: $0.bindMemory(to: UInt64.self)) }
      return 0
    }, Unmanaged.passUnretained(box).toOpaque())
    intervals = box.intervals
  }

  /// The user-space return addresses of stack `id`, innermost first; empty
  /// if it is gone (or was never captured).
  public func stack(_ id: Int16) -> [UInt64] {
    guard let tracer else { return [] }
    var ips = [UInt64](repeating: 0, count: Int(FW_STACK_DEPTH))
    let n = fw_tracer_stack(tracer, id, &ips, Int32(ips.count))
    return n > 0 ? Array(ips.prefix(Int(n))) : []
  }

  /// The user stack words noted with stack `id`'s first capture, from the
  /// stack pointer up; empty if there are none.
  public func stackTop(_ id: Int16) -> [UInt64] {
    guard let tracer else { return [] }
    var note = fw_stack_note()
    guard fw_tracer_stack_note(tracer, id, &note) == 0 else { return [] }
    let words = withUnsafeBytes(of: note.top) { Array($0.bindMemory(to: UInt64.self)) }
    return words.allSatisfy { $0 == 0 } ? [] : words
  }

  /// Sockets the kernel map holds in FIN_WAIT2 right now.
  public func inFlight() -> [fw_event] {
    guard let tracer else { return [] }
    final class Collector { var events: [fw_event] = [] }
    let collector = Collector()
    fw_tracer_in_flight(tracer, { ctx, event in
      guard let ctx, let event else { return 0 }
      Unmanaged<Collector>.fromOpaque(ctx).takeUnretainedValue().events.append(event.pointee)
      return 0
    }, Unmanaged.passUnretained(collector).toOpaque())
    return collector.events
  }

  /// Calls `body` with every entry of the kernel map, as stored (its `kind`
  /// is whatever the program last set, 0 before FIN_WAIT2), without
  /// gathering them: the map can hold hundreds of thousands.
  public func forEachTracked(_ body: (fw_event) -> Void) {
    guard let tracer else { return }
    withoutActuallyEscaping(body) { body in
      final class Visitor {
        let body: (fw_event) -> Void
        init(_ body: @escaping (fw_event) -> Void) { self.body = body }
      }
      let visitor = Visitor(body)
      _ = fw_tracer_tracked(tracer, { ctx, event in
        guard let ctx, let event else { return 0 }
        Unmanaged<Visitor>.fromOpaque(ctx).takeUnretainedValue().body(event.pointee)
        return 0
      }, Unmanaged.passUnretained(visitor).toOpaque())
    }
  }

  /// Marks the entry `copy` was read from as in FIN_WAIT2 since `at`
  /// (inferred); false if the program changed or removed it meanwhile.
  public func repairFinWait2(_ copy: fw_event, at: UInt64) -> Bool {
    guard let tracer else { return false }
    var copy = copy
    return fw_tracer_repair_fin_wait2(tracer, &copy, at) == 0
  }

  /// Deletes the entry `copy` was read from, if the program has not changed it.
  public func forget(_ copy: fw_event) -> Bool {
    guard let tracer else { return false }
    var copy = copy
    return fw_tracer_forget(tracer, &copy) == 0
  }

  public func stop() {
    fw_tracer_stop(tracer)
    tracer = nil
  }

  deinit {
    fw_tracer_stop(tracer)
  }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
  guard let s else { return body(nil) }
  return s.withCString { body($0) }
}

import CFinwaitBPF
import FinwaitCore
import SystemPackage

/// The loaded and attached BPF program, and the ring buffer it feeds.
/// Detached and freed on `stop()` or deinit.
public final class Tracer: RecordSource {
  private var tracer: OpaquePointer?

  /// The program loaded and attached.
  public let program: AttachProgram
  public var attachProgram: AttachProgram? { program }

  /// Opens, configures, loads and attaches the embedded object's `program`.
  /// `btfPath`: kernel BTF to use instead of /sys/kernel/btf/vmlinux.
  public init(config: KernelConfig, btfPath: String?, program: AttachProgram) throws(FinwaitError) {
    var failed = FW_STAGE_NONE
    var handle: OpaquePointer?
    var raw = config.raw
    let attach = program == .tpBTF ? FW_ATTACH_TP_BTF : FW_ATTACH_TRACEPOINT
    let err: Int32 = withOptionalCString(btfPath) { btf in fw_tracer_start(&raw, btf, attach, &handle, &failed) }
    if err != 0 { throw Self.error(-err, at: failed, btfPath: btfPath, config: config) }
    tracer = handle
    self.program = program
  }

  /// The program `mode` and the kernel's probes choose, started; with `auto`,
  /// a tp_btf program the kernel will not load or attach falls back to the
  /// classic tracepoint (tracefs mounted for the attach if no one did).
  /// `note` gets one line per decision, for --verbose.
  public static func start(
    config: KernelConfig, btfPath: String?, mode: AttachMode, probes: KernelProbes = .system,
    note: (String) -> Void
  ) throws(FinwaitError) -> Tracer {
    let available = probes.tpBTF()
    guard var program = mode.first(tpBTFAvailable: available) else {
      throw .attachUnavailable(
        "--attach tp_btf: the kernel has no BTF for tracepoint inet_sock_set_state (\(Preflight.defaultBTFPath) "
          + "missing); use --attach tracepoint or auto")
    }
    if mode == .auto && !available {
      note("no kernel BTF for tp_btf/inet_sock_set_state at \(Preflight.defaultBTFPath): using the classic tracepoint")
    }
    while true {
      do throws(FinwaitError) {
        return try startOne(config: config, btfPath: btfPath, program: program, note: note)
      } catch {
        // Permissions, sizes and --btf files fail the same either way: only
        // what libbpf or the kernel refused at load or attach falls back.
        var fallsBack = false
        if case .bpf = error { fallsBack = true }
        if case .bpfDetail = error { fallsBack = true }
        guard fallsBack, let next = mode.next(after: program) else { throw error }
        note("tp_btf did not start (\(error.message)); trying the classic tracepoint")
        program = next
      }
    }
  }

  private static func startOne(
    config: KernelConfig, btfPath: String?, program: AttachProgram, note: (String) -> Void
  ) throws(FinwaitError) -> Tracer {
    guard program == .tracepoint else { return try Tracer(config: config, btfPath: btfPath, program: program) }
    let mounted = try Tracefs.mountIfNeeded()
    if let mounted { note("mounted tracefs at \(mounted) to attach the classic tracepoint (unmounted once attached)") }
    defer { if let mounted { Tracefs.unmount(mounted) } }
    return try Tracer(config: config, btfPath: btfPath, program: program)
  }

  /// What a failed start means for the user, in one line.
  static func error(_ code: Int32, at stage: fw_stage, btfPath: String?, config: KernelConfig) -> FinwaitError {
    let errno = Errno(rawValue: code)
    if errno == .notPermitted || errno == .permissionDenied {
      return .notPermitted("the kernel refused to \(stageName(stage)) the BPF program (\(errno))")
    }
    // libbpf's own codes (4000-4099) are not errno values: name them with libbpf's text.
    let libbpfCode = (4000..<4100).contains(code)
    // With --btf, open and CO-RE relocation at load read that file: an ELF
    // file without a .BTF section fails with ENOENT, another kernel's BTF
    // with ESRCH or EINVAL (no such type or field).
    if let btfPath, stage == FW_STAGE_OPEN
      || (stage == FW_STAGE_LOAD && (libbpfCode || [.noSuchFileOrDirectory, .noSuchProcess, .invalidArgument].contains(errno)))
    {
      let reason = libbpfCode ? libbpfMessage(code) : errno == .noSuchFileOrDirectory ? "no .BTF section" : "\(errno)"
      return .badBTF(path: btfPath, reason: reason)
    }
    if stage == FW_STAGE_LOAD, errno == .argListTooLong || errno == .noMemory {
      return .invalidArgument(
        "the kernel could not create the socket map of \(config.maxTracked) entries (\(errno)); lower --max-tracked")
    }
    if libbpfCode { return .bpfDetail(stage: stageName(stage), detail: libbpfMessage(code)) }
    return .bpf(stage: stageName(stage), errno: errno)
  }

  static func libbpfMessage(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 128)
    fw_libbpf_strerror(code, &buffer, buffer.count)
    return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
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

  /// --stack: what the tracer's reader thread took (fw_tracer_take_announcements).
  private lazy var announcements = Announcements { [unowned self] each in
    guard let tracer else { return }
    withoutActuallyEscaping(each) { each in
      var each = each
      withUnsafeMutablePointer(to: &each) { context in
        _ = fw_tracer_take_announcements(tracer, { ctx, announcement, maps, length in
          guard let ctx, let announcement else { return }
          let bytes = maps.map { UnsafeBufferPointer(start: UnsafeRawPointer($0).assumingMemoryBound(to: UInt8.self), count: length) }
          ctx.assumingMemoryBound(to: Announcements.Each.self).pointee(
            announcement.pointee.event, StackOrigin(announcement.pointee), bytes)
        }, context)
      }
    }
  }

  /// Whether --stack's announcements are read under SCHED_FIFO (else a
  /// closer that exits within milliseconds of its FIN, on a busy node, may
  /// be gone before its maps are read).
  public var readsAnnouncementsInRealTime: Bool {
    tracer.map { fw_tracer_reads_announcements_in_real_time($0) == 1 } ?? false
  }

  public func processImages(over processes: any ProcessImages) -> any ProcessImages {
    announcements.images(over: processes)
  }

  @discardableResult
  public func drain(timeoutMilliseconds: Int32, _ body: (borrowing fw_event) -> Void) throws(FinwaitError) -> Int {
    guard let tracer else { return 0 }
    let announced = announcements.deliver(body)
    // One box per drain (10 a second), not per record.
    let n = withoutActuallyEscaping(body) { body in
      let visitor = RecordVisitor(body)
      return fw_tracer_drain(tracer, timeoutMilliseconds, { ctx, event in
        guard let ctx, let event else { return 0 }
        Unmanaged<RecordVisitor>.fromOpaque(ctx).takeUnretainedValue().body(event.pointee)
        return 0
      }, Unmanaged.passUnretained(visitor).toOpaque())
    }
    if n == -Errno.interrupted.rawValue { return announced }
    if n < 0 { throw .bpf(stage: "poll", errno: Errno(rawValue: -n)) }
    return announced + Int(n)
  }

  public var counters: KernelCounters {
    guard let tracer else { return KernelCounters() }
    var raw = fw_counters()
    fw_tracer_counters(tracer, &raw)
    var misses: UInt64 = 0
    var counters = KernelCounters(raw)
    switch fw_tracer_recursion_misses(tracer, &misses) {
    case 0: counters.recursionMisses = misses
    case -Errno.notSupported.rawValue: counters.recursionMissesCounted = false
    default: break  // a failed read: the last value is not kept, 0 is shown
    }
    // The classic tracepoint's skips are counted only from Linux 6.7
    // (trace_call_bpf); before, the kernel reports 0 whatever it skipped.
    if program == .tracepoint && !Self.classicTracepointCountsSkips { counters.recursionMissesCounted = false }
    return counters
  }

  /// Linux 6.7+: a classic tracepoint program's skipped runs are counted.
  public static let classicTracepointCountsSkips =
    ProcText.kernelVersion(ofRelease: Preflight.kernelRelease()).map { $0.major > 6 || ($0.major == 6 && $0.minor >= 7) } ?? true

  /// Stops new records; what is queued can still be drained.
  public func detach() {
    if let tracer { fw_tracer_detach(tracer) }
  }

  /// Hands over, and removes, each histogram the kernel counted since the last call.
  public func takeHistograms(_ body: (fw_hist_key, UnsafeBufferPointer<UInt64>, UnsafeBufferPointer<UInt64>) -> Void) {
    guard let tracer else { return }
    typealias Body = (fw_hist_key, UnsafeBufferPointer<UInt64>, UnsafeBufferPointer<UInt64>) -> Void
    withoutActuallyEscaping(body) { body in
      var body: Body = body
      withUnsafeMutablePointer(to: &body) { context in
        _ = fw_tracer_take_hists(tracer, { ctx, key, hist in
          guard let ctx, let key, let hist else { return 0 }
          let body = ctx.assumingMemoryBound(to: Body.self).pointee
          withUnsafeBytes(of: hist.pointee.slots) { slots in
            withUnsafeBytes(of: hist.pointee.sum_ns) { sums in
              body(key.pointee, slots.bindMemory(to: UInt64.self), sums.bindMemory(to: UInt64.self))
            }
          }
          return 0
        }, context)
      }
    }
  }

  /// The user-space return addresses of stack `id`, innermost first; empty
  /// if it is gone (or was never captured).
  public func stack(_ id: Int16) -> [UInt64] {
    guard let tracer else { return [] }
    return Self.frames { fw_tracer_stack(tracer, id, $0, $1) }
  }

  /// The user stack words noted with stack `id`'s first capture, from the
  /// stack pointer up; empty if there are none.
  public func stackTop(_ id: Int16) -> [UInt64] {
    guard let tracer else { return [] }
    return Self.words { fw_tracer_stack_note(tracer, id, $0) }
  }

  /// Calls `body` with every entry of the kernel map, as stored (its `kind`
  /// is whatever the program last set, 0 before FIN_WAIT2), without
  /// gathering them: the map can hold hundreds of thousands.
  public func forEachTracked(_ body: (fw_event) -> Void) {
    guard let tracer else { return }
    _ = EntryVisitor.walk({ fw_tracer_tracked(tracer, $0, $1) }, body)
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

private final class RecordVisitor {
  let body: (borrowing fw_event) -> Void
  init(_ body: @escaping (borrowing fw_event) -> Void) { self.body = body }
}

/// Hands each entry a C map walk (`fw_record_fn`) visits to a Swift closure.
final class EntryVisitor {
  let body: (fw_event) -> Void
  init(_ body: @escaping (fw_event) -> Void) { self.body = body }

  /// Runs `walk` (a C call taking the callback and its context) with `body`
  /// as the callback; returns what `walk` returns.
  static func walk(_ walk: (fw_record_fn, UnsafeMutableRawPointer) -> Int32, _ body: (fw_event) -> Void) -> Int32 {
    withoutActuallyEscaping(body) { body in
      let visitor = EntryVisitor(body)
      return walk({ ctx, event in
        guard let ctx, let event else { return 0 }
        Unmanaged<EntryVisitor>.fromOpaque(ctx).takeUnretainedValue().body(event.pointee)
        return 0
      }, Unmanaged.passUnretained(visitor).toOpaque())
    }
  }
}

import CFinwaitBPF
import CFinwaitSystem
import FinwaitCore

/// Everything the tracing loop touches outside itself: the record source,
/// the node's sockets, processes and cgroups, the clock, signals, outputs
/// and readiness. `LoopEnvironment.system` is the real node; tests build
/// one from scripted parts and run the same loop without root.
public struct LoopEnvironment {
  public var openSource: (KernelConfig) throws(FinwaitError) -> any RecordSource
  public var closeSource: (any RecordSource) -> Void = { _ in }
  /// nil: no sock_diag (orphans in timewait are not followed, existing
  /// connections not listed).
  public var reconciliation: Reconciliation?
  public var processes: any ProcessImages
  /// nil without cgroup v2: records then carry no container or pod.
  public var workloads: Workloads?
  public var clock: () -> UInt64
  public var wallClock: WallClock
  public var stopRequested: () -> Bool
  public var stdout: any LineSink
  public var stderr: any LineSink
  public var readiness: Readiness

  public init(
    openSource: @escaping (KernelConfig) throws(FinwaitError) -> any RecordSource,
    reconciliation: Reconciliation?, processes: any ProcessImages, workloads: Workloads?,
    clock: @escaping () -> UInt64, wallClock: WallClock, stopRequested: @escaping () -> Bool,
    stdout: any LineSink, stderr: any LineSink, readiness: Readiness = Readiness()
  ) {
    self.openSource = openSource
    self.reconciliation = reconciliation
    self.processes = processes
    self.workloads = workloads
    self.clock = clock
    self.wallClock = wallClock
    self.stopRequested = stopRequested
    self.stdout = stdout
    self.stderr = stderr
    self.readiness = readiness
  }

  /// This node, for real: the preflight checks (and warnings about filters
  /// that name nothing), libbpf's verbosity, the stop handlers, the libbpf
  /// tracer, and sock_diag unless `reconcile` is off. sock_diag that cannot
  /// be used is one warning, and `without` says what is done without it.
  /// `warn` writes a warning (serve: a logfmt line); default: `finwait:
  /// warning: ...` on stderr.
  public static func system(
    _ configuration: TracingLoop.Configuration, reconcile: Bool, verbose: Bool, readiness: Readiness,
    without: String, warn: ((String) -> Void)? = nil
  ) throws(FinwaitError) -> LoopEnvironment {
    let err = LineOutput.standardError
    let warn = warn ?? { try? err.write("finwait: warning: \($0)") }
    try Preflight.check(btfPath: configuration.btfPath)
    fw_set_libbpf_verbose(verbose ? 1 : 0)
    fw_install_stop_handlers()
    let sockets = SockDiag()
    for warning in Preflight.warnings(for: configuration.kernel, namespaces: sockets.namespaces()) {
      warn(warning)
    }
    var reconciliation: Reconciliation?
    if reconcile {
      let candidate = Reconciliation(sockets: sockets)
      do {
        try candidate.check()
        reconciliation = candidate
      } catch {
        warn("\(error.message); \(without)")
      }
    }
    try err.flush()
    let btfPath = configuration.btfPath
    let attach = configuration.attach
    // --verbose: how the program was attached, once.
    let note: (String) -> Void = { line in if verbose { try? err.write("finwait: \(line)") } }
    var env = LoopEnvironment(
      openSource: { (kernel) throws(FinwaitError) in
        let tracer = try Tracer.start(config: kernel, btfPath: btfPath, mode: attach, note: note)
        note("attached: \(tracer.program == .tpBTF ? "tp_btf/inet_sock_set_state" : "tracepoint/sock/inet_sock_set_state")")
        // The probe loads a small program: only when its answer is printed.
        if verbose {
          note(fw_probe_task_pt_regs() == 1
            ? "the closer's registers (path, syscall, --stack's recovered frame): bpf_task_pt_regs"
            : "the closer's registers (path, syscall, --stack's recovered frame): read at the top of its kernel stack (no bpf_task_pt_regs before Linux 5.15)")
        }
        if kernel.captureStacks && !tracer.readsAnnouncementsInRealTime {
          warn("--stack: without CAP_SYS_NICE (or an RLIMIT_RTPRIO) a new call site's maps are read at normal priority: on a busy node, a closer that exits within milliseconds of its FIN may keep bare addresses")
        }
        if !tracer.counters.recursionMissesCounted {
          warn(tracer.program == .tracepoint && !Tracer.classicTracepointCountsSkips
            ? "through the classic tracepoint, this kernel does not count the state changes it skips while any BPF kprobe or tracepoint program runs on that CPU (Linux 6.7+ does): recursion_misses is unknown (n/a)"
            : "this kernel does not count the state changes it skips while the program runs (Linux 5.12+ does): recursion_misses is unknown (n/a)")
        }
        return tracer
      },
      reconciliation: reconciliation, processes: ProcfsImages(), workloads: Workloads(),
      clock: monotonicNow, wallClock: .now(), stopRequested: { fw_stop_requested() != 0 },
      stdout: LineOutput.standardOutput, stderr: err, readiness: readiness)
    env.closeSource = { ($0 as? Tracer)?.stop() }
    return env
  }
}

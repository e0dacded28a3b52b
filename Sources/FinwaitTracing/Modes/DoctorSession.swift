#if canImport(Glibc)
import Glibc
#endif
import CFinwaitSystem
import FinwaitCore

/// What the doctor's I/O gives besides sockets: owners, pods, socket
/// settings, conntrack, programs; refreshed before each run, with warnings
/// for what it could not read (each said once).
public protocol DoctorSources: DoctorLookups {
  func refresh()
  /// Warnings raised since the last call.
  func takeWarnings() -> [String]
}

/// The doctor's seams: the node in production (`DoctorEnvironment.system`),
/// scripted parts in tests.
public struct DoctorEnvironment {
  public var sockets: any SocketTable
  /// The node's network namespace (PID 1's).
  public var nodeNetns: UInt32
  public var sysctls: (UInt32) -> TCPSysctls
  public var sources: any DoctorSources
  public var stdout: any LineSink
  public var stderr: any LineSink
  public var clock: () -> UInt64
  public var wallClock: WallClock
  /// Waits this many nanoseconds; false when a signal asked to stop meanwhile.
  public var sleep: (UInt64) -> Bool
  public var stopRequested: () -> Bool

  public init(sockets: any SocketTable, nodeNetns: UInt32, sysctls: @escaping (UInt32) -> TCPSysctls,
              sources: any DoctorSources, stdout: any LineSink, stderr: any LineSink,
              clock: @escaping () -> UInt64, wallClock: WallClock, sleep: @escaping (UInt64) -> Bool,
              stopRequested: @escaping () -> Bool) {
    self.sockets = sockets
    self.nodeNetns = nodeNetns
    self.sysctls = sysctls
    self.sources = sources
    self.stdout = stdout
    self.stderr = stderr
    self.clock = clock
    self.wallClock = wallClock
    self.sleep = sleep
    self.stopRequested = stopRequested
  }

  /// This node: sock_diag, /proc, cgroups, sysctls, conntrack, the socket iterator.
  public static func system(podLogs: String, watching: Bool) -> DoctorEnvironment {
    let namespaces = Namespaces()
    if watching { fw_install_stop_handlers() }
    return DoctorEnvironment(
      sockets: SockDiag(namespaces: namespaces), nodeNetns: namespaces.node, sysctls: namespaces.tcpSysctls(of:),
      sources: SystemDoctorSources(namespaces: namespaces, podLogs: podLogs),
      stdout: LineOutput.standardOutput, stderr: LineOutput.standardError, clock: monotonicNow,
      wallClock: WallClock.now(), sleep: sleepUnlessStopped, stopRequested: { fw_stop_requested() != 0 })
  }
}

/// `finwait doctor`: reads every namespace's FIN_WAIT2 and CLOSE_WAIT sockets
/// and what decides their fate, hands them to `Doctor.diagnose`, and prints
/// the verdicts once, or every `watch` until a signal.
public struct DoctorSession {
  public struct Options {
    public var filter = KernelConfig()
    public var json = false
    public var verbose = false
    /// Run again every this many nanoseconds until stopped; nil: once.
    public var watch: UInt64?

    public init() {}
  }

  let options: Options
  let env: DoctorEnvironment

  public init(_ options: Options, environment: DoctorEnvironment) {
    self.options = options
    self.env = environment
  }

  public func run() throws(FinwaitError) {
    // sock_diag usable at all (an empty state mask costs a round trip, not a dump).
    try env.sockets.forEach(netns: env.sockets.ownNamespace, states: 0) { _ in }
    for warning in Preflight.warnings(for: options.filter, namespaces: env.sockets.namespaces()) {
      try env.stderr.write("finwait: warning: \(warning)")
    }
    var format = DoctorFormat(clock: env.wallClock)
    if options.verbose {
      format.examples = .max
      format.maxGroups = .max
      format.screen = nil
    }
    var first = true
    // Each namespace that cannot be read is named once, not in every run.
    var named: Set<UInt32> = []
    while true {
      let started = env.clock()
      let (input, unreadable) = read()
      env.sources.refresh()
      let diagnosis = Doctor.diagnose(input, lookups: env.sources, filter: options.filter)
      var warnings = env.sources.takeWarnings()
      let unnamed = unreadable.filter { named.insert($0).inserted }
      if !unnamed.isEmpty {
        warnings.append("\(unnamed.count) network namespace\(unnamed.count == 1 ? "" : "s") could not be read "
          + "(entering one needs CAP_SYS_ADMIN): \(unnamed.map(String.init).joined(separator: ", "))")
      }
      for warning in warnings { try env.stderr.write("finwait: warning: \(warning)") }
      try env.stderr.flush()
      if options.json {
        var failure: FinwaitError?
        format.json(diagnosis) { piece in
          guard failure == nil else { return }
          do throws(FinwaitError) { try env.stdout.writeRaw(piece.text) } catch { failure = error }
        }
        if let failure { throw failure }
        try env.stdout.write("")
      } else {
        if !first { try env.stdout.write("") }
        for line in format.text(diagnosis) { try env.stdout.write(line) }
      }
      try env.stdout.flush()
      if options.verbose {
        try env.stderr.write("finwait: read \(input.dumps.reduce(0) { $0 + $1.sockets.count }) sockets in "
          + "\(input.dumps.count) namespaces and diagnosed them in \(formatDuration(nanoseconds: env.clock() - started))")
        try env.stderr.flush()
      }
      first = false
      guard let watch = options.watch, !env.stdout.readerGone, !env.stopRequested(), env.sleep(watch) else { return }
    }
  }

  /// The sockets and sysctls of every namespace, `--netns` or not: a peer
  /// in another namespace decides the verdict (`Doctor.matches` filters the
  /// report, by either end); the namespaces that could not be dumped. A
  /// `--netns` that is not there was named by the preflight warning.
  func read() -> (DoctorInput, unreadable: [UInt32]) {
    let targets = env.sockets.namespaces()
    let states = SockDiag.mask([.finWait2, .closeWait])
    var dumps: [(netns: UInt32, sockets: [DiagSocket])] = []
    var sysctls: [UInt32: TCPSysctls] = [:]
    var unreadable: [UInt32] = []
    for netns in targets {
      do {
        dumps.append((netns, try env.sockets.dump(netns: netns, states: states)))
        sysctls[netns] = env.sysctls(netns)
      } catch {
        unreadable.append(netns)
      }
      if netns != env.sockets.ownNamespace { env.sockets.release(netns) }
    }
    if sysctls[env.nodeNetns] == nil { sysctls[env.nodeNetns] = env.sysctls(env.nodeNetns) }
    return (DoctorInput(now: env.clock(), nodeNetns: env.nodeNetns, sysctls: sysctls, dumps: dumps), unreadable)
  }
}

/// nanosleep returns early when a signal arrives (the stop handlers do not
/// restart it); false when one asked to stop.
func sleepUnlessStopped(_ ns: UInt64) -> Bool {
  let until = monotonicNow() + ns
  while fw_stop_requested() == 0 {
    let now = monotonicNow()
    guard now < until else { return true }
    var left = timespec(tv_sec: Int((until - now) / 1_000_000_000), tv_nsec: Int((until - now) % 1_000_000_000))
    nanosleep(&left, nil)
  }
  return false
}

/// The doctor's I/O on this node: owners from /proc, pods from cgroups and
/// the kubelet's log directories, socket settings (a BPF iterator), conntrack,
/// program identity. A part that cannot work is turned off with one warning.
final class SystemDoctorSources: DoctorSources {
  private let namespaces: Namespaces
  private var owners = SocketOwners()
  private let workloads: Workloads?
  private let pods: PodNames
  private var programs: [UInt32: KnownProgram?] = [:]
  private var warnings: [String] = []
  /// Loaded at first use; nil once it failed (said once).
  private var settingsReader: SocketSettingsReader?
  private var settingsOff = false
  private var settingsByNetns: [UInt32: [Endpoints: SocketSettings]] = [:]
  private var conntrackOff = false
  private let conntrackTable: ConntrackTable
  /// Namespaces whose conntrack cannot be read (said once each).
  private var conntrackUnreadable: Set<UInt32> = []
  private let nodeNetns: UInt32
  /// finwait tracers other processes run: paths, exact dwell, call sites.
  private let running = RunningTracers()
  private var runningOff = false
  private var runningSaid: Set<String> = []

  init(namespaces: Namespaces, podLogs: String) {
    self.namespaces = namespaces
    conntrackTable = ConntrackTable(namespaces: namespaces)
    nodeNetns = namespaces.node
    workloads = Workloads()
    pods = PodNames(directory: podLogs)
    for capability in Capability.doctorMissing(effective: Preflight.effectiveCapabilities() ?? 0) {
      warnings.append("without \(capability.name), finwait \(capability.doctorWithoutIt ?? "")")
      if capability == .netAdmin { conntrackOff = true }
      if capability == .sysAdmin { runningOff = true }
      if capability == .bpf || capability == .perfmon { settingsOff = true }
    }
  }

  func refresh() {
    owners = SocketOwners.scan()
    programs.removeAll(keepingCapacity: true)
    settingsByNetns.removeAll(keepingCapacity: true)
    guard !runningOff else { return }
    do throws(FinwaitError) {
      // Each said once a session, as the other warnings.
      for problem in try running.refresh() where runningSaid.insert(problem).inserted { warnings.append(problem) }
    } catch {
      runningOff = true
      warnings.append("a running finwait trace cannot be read (\(error.message)): no call sites or exact dwells from it")
    }
  }

  func traced(netns: UInt32, endpoints: Endpoints) -> TracedClose? {
    runningOff ? nil : running.traced(netns: netns, endpoints: endpoints)
  }

  func takeWarnings() -> [String] {
    defer { warnings.removeAll() }
    return warnings
  }

  func owner(ofInode inode: UInt32) -> Owner? { owners.owner(ofInode: inode) }

  func labels(of owner: Owner) -> OwnerLabels {
    let workload = workloads?.workload(of: owner)
    return OwnerLabels(comm: owner.comm, workload: workload, pod: workload?.pod.flatMap(pods.pod))
  }

  /// One iterator read per namespace and run, on first need.
  func settings(netns: UInt32, endpoints: Endpoints) -> SocketSettings? {
    if let known = settingsByNetns[netns] { return known[endpoints] }
    guard !settingsOff else { return nil }
    do throws(FinwaitError) {
      if settingsReader == nil { settingsReader = try SocketSettingsReader(namespaces: namespaces) }
      let read = try settingsReader!.settings(netns: netns)
      settingsByNetns[netns] = read
      return read[endpoints]
    } catch {
      settingsByNetns[netns] = [:]
      if settingsReader == nil {
        settingsOff = true
        warnings.append("sockets' own keepalive and TCP_LINGER2 settings are not read: \(error.message)")
      } else {
        warnings.append("sockets' own settings in network namespace \(netns) are not read: \(error.message)")
      }
      return nil
    }
  }

  /// The socket's namespace first; a pod's connection to a service IP is
  /// translated in the node's namespace, so that one next when the first
  /// entry shows no NAT.
  func conntrack(netns: UInt32, endpoints: Endpoints) -> ConntrackMatch? {
    guard !conntrackOff else { return nil }
    var plain: ConntrackMatch?
    for ns in netns == nodeNetns ? [netns] : [netns, nodeNetns] where !conntrackUnreadable.contains(ns) {
      do throws(FinwaitError) {
        guard let entry = try conntrackTable.lookup(netns: ns, endpoints) else { continue }
        let match = ConntrackMatch(netns: ns, entry: entry)
        if match.isNAT { return match }
        plain = plain ?? match
      } catch {
        conntrackUnreadable.insert(ns)
        conntrackTable.release(ns)
        if case .notPermitted? = try? conntrackTable.availability(netns: ns) {
          conntrackOff = true
          warnings.append("without CAP_NET_ADMIN, finwait \(Capability.netAdmin.doctorWithoutIt ?? "")")
          return nil
        }
        warnings.append("\(error.message): peers behind a NAT there are not found")
      }
    }
    return plain
  }

  func program(of owner: Owner) -> KnownProgram? {
    if let known = programs[owner.pid] { return known }
    let found = KnownProgram.identify(comm: owner.comm, isGoBinary: ProgramIdentity.isGoBinary(pid: owner.pid))
    programs[owner.pid] = found
    return found
  }
}

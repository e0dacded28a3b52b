#if canImport(Glibc)
import Glibc
#endif
import CFinwaitSystem
import FinwaitCore

/// `finwait doctor`: reads every namespace's FIN_WAIT2 and CLOSE_WAIT sockets
/// with what decides their fate (tcp_info, sysctls, the sockets' own
/// settings, conntrack, owners), hands them to `Doctor.diagnose`, and prints
/// the verdicts once, or every `watch` until a signal.
public struct DoctorSession {
  public struct Options {
    public var filter = KernelConfig()
    public var json = false
    public var verbose = false
    /// Re-run every this many nanoseconds until SIGINT/SIGTERM; nil: once.
    public var watch: UInt64?
    public var podLogs = PodNames.defaultDirectory

    public init() {}
  }

  let options: Options

  public init(_ options: Options) {
    self.options = options
  }

  public func run() throws(FinwaitError) {
    let namespaces = Namespaces()
    let sockets = SockDiag(namespaces: namespaces)
    try sockets.forEach(netns: sockets.ownNamespace, states: 0) { _ in }  // sock_diag usable at all
    let err = LineOutput.standardError
    for warning in Preflight.warnings(for: options.filter, namespaces: namespaces.all()) {
      try err.write("finwait: warning: \(warning)")
    }
    let lookups = SystemDoctorLookups(namespaces: namespaces, podLogs: options.podLogs)
    for warning in lookups.warnings { try err.write("finwait: warning: \(warning)") }
    try err.flush()
    let out = LineOutput.standardOutput
    var format = DoctorFormat(clock: WallClock.now())
    if options.verbose {
      format.examples = .max
      format.maxGroups = .max
    }
    if options.watch != nil { fw_install_stop_handlers() }
    var first = true
    repeat {
      if !first {
        guard let watch = options.watch, sleepUnlessStopped(watch) else { break }
      }
      let started = monotonicNow()
      let input = read(sockets: sockets, namespaces: namespaces)
      lookups.refresh()
      let diagnosis = Doctor.diagnose(input, lookups: lookups, filter: options.filter)
      if options.json {
        try out.write(format.json(diagnosis))
      } else {
        if !first { try out.write("") }
        for line in format.text(diagnosis) { try out.write(line) }
      }
      try out.flush()
      if options.verbose {
        try err.write("finwait: read \(input.dumps.reduce(0) { $0 + $1.sockets.count }) sockets in "
          + "\(input.dumps.count) namespaces and diagnosed them in \(formatDuration(nanoseconds: monotonicNow() - started))")
        try err.flush()
      }
      first = false
    } while options.watch != nil && fw_stop_requested() == 0 && !out.readerGone
  }

  func read(sockets: SockDiag, namespaces: Namespaces) -> DoctorInput {
    let targets = options.filter.netns.map { [$0] } ?? namespaces.all()
    let states = SockDiag.mask([.finWait2, .closeWait])
    var dumps: [(netns: UInt32, sockets: [DiagSocket])] = []
    var sysctls: [UInt32: TCPSysctls] = [:]
    let node = namespaces.node
    for netns in Set(targets + [node]) {
      sysctls[netns] = namespaces.tcpSysctls(of: netns)
    }
    for netns in targets {
      guard let dumped = try? sockets.dump(netns: netns, states: states) else { continue }
      dumps.append((netns, dumped))
    }
    return DoctorInput(now: monotonicNow(), nodeNetns: node, sysctls: sysctls, dumps: dumps)
  }

  /// false when a signal asked to stop meanwhile (nanosleep returns early on one).
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
}

/// The doctor's I/O: owners from /proc, pods from cgroups and the kubelet's
/// log directories, socket settings, conntrack, program identity.
final class SystemDoctorLookups: DoctorLookups {
  private let namespaces: Namespaces
  private var owners = SocketOwners()
  private let workloads: Workloads?
  private let pods: PodNames
  private var programs: [UInt32: KnownProgram?] = [:]
  private(set) var warnings: [String] = []

  init(namespaces: Namespaces, podLogs: String) {
    self.namespaces = namespaces
    workloads = Workloads()
    pods = PodNames(directory: podLogs)
  }

  /// Before each diagnosis: owners change between runs.
  func refresh() {
    owners = SocketOwners.scan()
    programs.removeAll(keepingCapacity: true)
  }

  func owner(ofInode inode: UInt32) -> Owner? { owners.owner(ofInode: inode) }

  func labels(of owner: Owner) -> OwnerLabels {
    let workload = workloads?.workload(of: owner)
    return OwnerLabels(comm: owner.comm, workload: workload, pod: workload?.pod.flatMap(pods.pod))
  }

  func settings(netns: UInt32, endpoints: Endpoints) -> SocketSettings? { nil }

  func conntrack(netns: UInt32, endpoints: Endpoints) -> ConntrackMatch? { nil }

  func program(of owner: Owner) -> KnownProgram? {
    if let known = programs[owner.pid] { return known }
    let found = KnownProgram.identify(comm: owner.comm, isGoBinary: false)
    programs[owner.pid] = found
    return found
  }
}

import CFinwaitEvent

/// What `finwait serve` exports: each metric's name, type and help, defined
/// here once. Alerts, dashboards, tests and docs/serve.md use these names.
public struct Metric: Sendable, Hashable {
  public enum Kind: String, Sendable { case counter, gauge, histogram }
  public let name: String
  public let kind: Kind
  public let help: String

  public static let sockets = Metric(
    name: "finwait_fin_wait2_sockets", kind: .gauge,
    help: "TCP sockets in FIN_WAIT2 now, attached (the application still holds them) or orphaned.")
  public static let duration = Metric(
    name: "finwait_fin_wait2_duration_seconds", kind: .histogram,
    help: "Time connections spent in FIN_WAIT2, by the path that led there and how it ended.")
  public static let total = Metric(
    name: "finwait_fin_wait2_total", kind: .counter,
    help: "Connections whose FIN_WAIT2 ended, by path and owner.")
  public static let stuck = Metric(
    name: "finwait_fin_wait2_stuck_sockets", kind: .gauge,
    help: "Attached sockets in FIN_WAIT2 for longer than --stuck.")
  public static let oldest = Metric(
    name: "finwait_fin_wait2_oldest_seconds", kind: .gauge,
    help: "Dwell of the oldest socket in FIN_WAIT2 now (0 when there is none).")
  public static let closeWaitPeers = Metric(
    name: "finwait_close_wait_peer_sockets", kind: .gauge,
    help: "Local peers in CLOSE_WAIT of sockets in FIN_WAIT2 now: the application on this node that has not closed.")
  public static let buildInfo = Metric(
    name: "finwait_build_info", kind: .gauge, help: "Always 1: finwait's version, the running kernel and the attach program (tp_btf or tracepoint).")

  /// `finwait_ringbuf_drops_total`: one counter per loss and repair, under
  /// the name every other mode prints.
  public static func loss(_ counter: LossAccount.Counter) -> Metric {
    Metric(name: "finwait_\(counter.rawValue)_total", kind: .counter, help: counter.help)
  }
}

extension LossAccount.Counter {
  /// One line on what the counter counts (its metric's help).
  public var help: String {
    switch self {
    case .ringbufDrops: "Records lost: the ring buffer was full."
    case .mapFull: "Connections not tracked: the per-socket map was full (--max-tracked)."
    case .lostEnds: "Connections whose end was never seen."
    case .undecodable: "Records user space could not decode."
    case .unseenStart: "FIN_WAIT2 starts of sockets whose FIN_WAIT1 was not seen."
    case .recursionMisses: "State changes the kernel skipped (program busy on that CPU)."
    case .recoveredStarts: "FIN_WAIT2 starts the program missed, found through sock_diag."
    case .staleEntries: "FIN_WAIT1 entries whose socket was gone when audited."
    case .histFull: "Dwells not counted: the histogram map was full."
    case .stackLost: "Call stacks not kept: their stack-map bucket held another."
    }
  }
}

/// Label names, once.
public enum MetricLabel {
  public static let state = "state"
  public static let path = "path"
  public static let end = "end"
  public static let namespace = "namespace"
  public static let pod = "pod"
  public static let container = "container"
  public static let comm = "comm"
  public static let version = "version"
  public static let kernel = "kernel"
  public static let attach = "attach"
}

/// Attached: the application still holds the socket (its FIN_WAIT2 has no
/// timer); orphaned: closed, the kernel's tcp_fin_timeout runs.
public enum HeldState: String, Sendable, CaseIterable {
  case attached, orphaned
}

/// Who holds a connection, as labels: `namespace`, `pod`, `container` for a
/// Kubernetes workload, `container` and `comm` for another container, `comm`
/// for a host process. Never addresses or ports (unbounded).
public struct OwnerLabels: Sendable, Hashable, Comparable {
  public var namespace = ""
  public var pod = ""
  public var container = ""
  public var comm = ""

  public init(namespace: String = "", pod: String = "", container: String = "", comm: String = "") {
    self.namespace = namespace
    self.pod = pod
    self.container = container
    self.comm = comm
  }

  /// Beyond `--max-owners`: every owner label is `other`.
  public static let other = OwnerLabels(namespace: "other", pod: "other", container: "other", comm: "other")

  /// `pod`: the pod's namespace, name and the container's name when the
  /// kubelet's log directories name them; the pod UID and the short
  /// container id when they do not.
  public init(comm: String, workload: Workload?, pod: PodName?) {
    guard let workload else {
      self.init(comm: comm)
      return
    }
    if let uid = workload.podUID {
      self.init(
        namespace: pod?.namespace ?? "", pod: pod?.name ?? uid,
        container: workload.containerID.flatMap { pod?.containers[$0] } ?? pod?.soleContainer
          ?? workload.shortContainerID ?? "")
    } else {
      self.init(container: workload.shortContainerID ?? "", comm: comm)
    }
  }

  public var pairs: [(String, String)] {
    [(MetricLabel.namespace, namespace), (MetricLabel.pod, pod), (MetricLabel.container, container),
     (MetricLabel.comm, comm)]
  }

  public static func < (a: OwnerLabels, b: OwnerLabels) -> Bool {
    (a.namespace, a.pod, a.container, a.comm) < (b.namespace, b.pod, b.container, b.comm)
  }
}

/// A pod as the kubelet's log directories name it.
public struct PodName: Sendable, Equatable {
  public var namespace: String
  public var name: String
  /// Container names by full container id.
  public var containers: [String: String]
  /// The pod's only container directory, if it has one: its name.
  public var soleContainer: String?

  public init(namespace: String, name: String, containers: [String: String] = [:], soleContainer: String? = nil) {
    self.namespace = namespace
    self.name = name
    self.containers = containers
    self.soleContainer = soleContainer
  }
}

/// Admits at most `limit` owners; past it, the least recently used one is
/// evicted (its series removed) to admit the next. Counters stay bounded on
/// a node whose pods come and go.
public struct OwnerBudget: Sendable {
  public let limit: Int
  private var lastUse: [OwnerLabels: UInt64] = [:]
  private var uses: UInt64 = 0

  public init(limit: Int) { self.limit = limit }

  public var count: Int { lastUse.count }

  /// Admits `owner`; returns the owner evicted to make room, if any.
  public mutating func admit(_ owner: OwnerLabels) -> OwnerLabels? {
    uses += 1
    if lastUse[owner] != nil || lastUse.count < limit {
      lastUse[owner] = uses
      return nil
    }
    // O(limit), only when a new owner arrives at a full budget.
    guard let oldest = lastUse.min(by: { $0.value < $1.value })?.key else { return nil }
    lastUse[oldest] = nil
    lastUse[owner] = uses
    return oldest
  }
}

/// A socket in FIN_WAIT2 now, from the kernel map or the user-space tracker.
public struct HeldSocket: Sendable {
  public var state: HeldState
  /// When FIN_WAIT2 began (a lower bound for sockets found at start).
  public var since: UInt64
  public var owner: OwnerLabels
  public var peerInCloseWait: Bool

  public init(state: HeldState, since: UInt64, owner: OwnerLabels, peerInCloseWait: Bool) {
    self.state = state
    self.since = since
    self.owner = owner
    self.peerInCloseWait = peerInCloseWait
  }
}

/// The gauges at one instant: sockets held by state and owner, stuck
/// sockets by owner, the oldest dwell and local peers in CLOSE_WAIT. Owners
/// beyond `maxOwners` (those holding the fewest sockets) are folded into
/// `OwnerLabels.other`.
public struct Census: Sendable, Equatable {
  public struct Key: Sendable, Hashable {
    public var state: HeldState
    public var owner: OwnerLabels

    public init(state: HeldState, owner: OwnerLabels) {
      self.state = state
      self.owner = owner
    }
  }

  public private(set) var sockets: [Key: Int] = [:]
  public private(set) var stuck: [OwnerLabels: Int] = [:]
  public private(set) var oldestNanoseconds: UInt64 = 0
  public private(set) var closeWaitPeers = 0

  public init() {}

  public init(_ held: some Sequence<HeldSocket>, now: UInt64, stuckAfter: UInt64?, maxOwners: Int) {
    var perOwner: [OwnerLabels: Int] = [:]
    for socket in held { perOwner[socket.owner, default: 0] += 1 }
    var kept = Set(perOwner.keys)
    if perOwner.count > maxOwners {
      let ranked = perOwner.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
      kept = Set(ranked.prefix(max(0, maxOwners - 1)).map(\.key))
    }
    for socket in held {
      let owner = kept.contains(socket.owner) ? socket.owner : .other
      let dwell = now - min(now, socket.since)
      sockets[Key(state: socket.state, owner: owner), default: 0] += 1
      oldestNanoseconds = max(oldestNanoseconds, dwell)
      if socket.peerInCloseWait { closeWaitPeers += 1 }
      if socket.state == .attached, let stuckAfter, dwell >= stuckAfter { stuck[owner, default: 0] += 1 }
    }
  }
}

/// The duration histogram's buckets: the kernel's log2 microsecond slots,
/// converted to seconds. Exported bounds are 2^k us for k in 10...34
/// (1.024 ms to 4.8 h); slots below fold into the first, above into +Inf.
public enum DwellBuckets {
  public static let exponents = 10...34
  public static let bounds: [Double] = exponents.map { Double(UInt64(1) << UInt64($0)) / 1e6 }

  /// A kernel histogram in observations for a histogram that takes one value
  /// at a time: each non-empty slot as its count of dwells at the slot's
  /// mean (the kernel keeps each slot's sum). A slot's mean lies inside the
  /// slot, so bucket counts are exact, and count times mean is the exact sum.
  public static func observations(
    slots: some Collection<UInt64>, sums: some Collection<UInt64>, _ body: (_ seconds: Double, _ count: UInt64) -> Void
  ) {
    for (count, sum) in zip(slots, sums) where count > 0 {
      body(Double(sum) / Double(count) / 1e9, count)
    }
  }
}

/// finwait's version, once: `--version` and `finwait_build_info`.
public enum Build {
  public static let version = "0.2.0"
}

/// An owner as metrics see it: its name and cgroup, not its pid (a label
/// per pid would be unbounded). Inline bytes: hashing one allocates nothing.
public struct OwnerKey: Sendable, Hashable {
  private var name: TaskName
  public var cgroupID: UInt64

  public init(_ owner: Owner?) {
    name = owner?.name ?? TaskName("")
    cgroupID = owner?.cgroupID ?? 0
  }

  /// A kernel histogram key's comm and cgroup.
  public init(kernel key: fw_hist_key) {
    name = TaskName(kernel: key.comm)
    cgroupID = key.cgroup_id
  }

  public var comm: String { name.string }
}

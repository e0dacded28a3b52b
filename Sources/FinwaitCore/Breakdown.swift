import CFinwaitEvent

/// What `finwait hist` breaks histograms down by, besides the path.
public enum Breakdown: String, Sendable, CaseIterable {
  case path, comm, pid, cgroup, port, stack

  /// The kernel's `enum fw_hist_by`.
  public var raw: UInt8 {
    let value = switch self {
    case .path: FW_HIST_BY_PATH
    case .comm: FW_HIST_BY_COMM
    case .pid: FW_HIST_BY_PID
    case .cgroup: FW_HIST_BY_CGROUP
    case .port: FW_HIST_BY_PORT
    case .stack: FW_HIST_BY_STACK
    }
    return UInt8(value.rawValue)
  }
}

/// One histogram's identity: the path, and the owner or port chosen by `--by`.
public struct BreakdownKey: Sendable, Hashable, Comparable {
  public var path: Path
  /// Only the one `--by` asks for is set.
  public var comm: String?
  public var pid: UInt32?
  public var cgroupID: UInt64?
  public var port: UInt16?
  /// The kernel's stack id; -1: none was captured.
  public var stackID: Int16?

  public init(
    path: Path, comm: String? = nil, pid: UInt32? = nil, cgroupID: UInt64? = nil, port: UInt16? = nil,
    stackID: Int16? = nil
  ) {
    self.path = path
    self.comm = comm
    self.pid = pid
    self.cgroupID = cgroupID
    self.port = port
    self.stackID = stackID
  }

  /// A kernel histogram's key.
  public init(kernel k: fw_hist_key, by: Breakdown) {
    self.init(path: Path(raw: k.path))
    switch by {
    case .path: break
    case .comm: comm = TaskName(kernel: k.comm).string
    case .pid: pid = k.tgid
    case .cgroup: cgroupID = k.cgroup_id
    case .port: port = k.port
    case .stack: stackID = k.stack_id
    }
  }

  /// A record's key, for dwells counted in user space (orphans followed to
  /// their end in timewait).
  public init(record r: Record, by: Breakdown) {
    self.init(path: r.connection.path)
    let owner = r.connection.owner
    switch by {
    case .path: break
    case .comm: comm = owner?.comm ?? ""
    case .pid: pid = owner?.pid ?? 0
    case .cgroup: cgroupID = owner?.cgroupID ?? 0
    case .port: port = r.connection.endpoints.localPort
    case .stack: stackID = r.connection.stackID ?? -1
    }
  }

  /// `path = close, comm = nginx`
  public var label: String {
    var parts = ["path = \(path.rawValue)"]
    if let comm { parts.append("comm = \(comm.isEmpty ? "?" : comm)") }
    if let pid { parts.append("pid = \(pid == 0 ? "?" : String(pid))") }
    if let cgroupID { parts.append("cgroup = \(cgroupID)") }
    if let port { parts.append("port = \(port)") }
    if let stackID { parts.append(stackID < 0 ? "stack = none" : "stack = \(stackID)") }
    return parts.joined(separator: ", ")
  }

  public static func < (a: BreakdownKey, b: BreakdownKey) -> Bool {
    if a.path != b.path { return a.path < b.path }
    return (a.comm ?? "", a.pid ?? 0, a.cgroupID ?? 0, a.port ?? 0, a.stackID ?? 0)
      < (b.comm ?? "", b.pid ?? 0, b.cgroupID ?? 0, b.port ?? 0, b.stackID ?? 0)
  }
}

/// One interval of `finwait hist`: the kernel's histograms and the dwells
/// counted in user space, merged by key.
public struct IntervalHistograms: Sendable {
  public let by: Breakdown
  /// Nanoseconds per slot unit: 1,000 (usecs) or 1,000,000 (msecs).
  public let unitNanoseconds: UInt64
  public private(set) var histograms: [BreakdownKey: Log2Histogram] = [:]

  public init(by: Breakdown, unitNanoseconds: UInt64) {
    self.by = by
    self.unitNanoseconds = unitNanoseconds
  }

  public var isEmpty: Bool { histograms.isEmpty }

  public mutating func add(kernel key: fw_hist_key, slots: some Collection<UInt64>) {
    histograms[BreakdownKey(kernel: key, by: by), default: Log2Histogram()].add(buckets: slots)
  }

  /// Counts an ended connection whose dwell is exact; others are not dwells.
  public mutating func add(_ r: Record) {
    guard r.kind == .finWait2, case let .exact(ns) = r.dwell else { return }
    histograms[BreakdownKey(record: r, by: by), default: Log2Histogram()].record(ns / unitNanoseconds)
  }

  /// bcc's layout: one block per key, in key order. `annotate` adds to a
  /// key's line (the container and pod of a cgroup); `details` are lines
  /// under it (a stack's frames).
  public func render(
    annotate: (BreakdownKey) -> String? = { _ in nil }, details: (BreakdownKey) -> [String] = { _ in [] }
  ) -> [String] {
    let unit = unitNanoseconds >= 1_000_000 ? "msecs" : "usecs"
    var lines: [String] = []
    for key in histograms.keys.sorted() {
      guard let histogram = histograms[key], histogram.total > 0 else { continue }
      lines.append("")
      lines.append(key.label + (annotate(key).map { ", " + $0 } ?? ""))
      lines += details(key)
      lines += histogram.render(unit: unit)
    }
    return lines
  }

  /// Merges histograms whose keys `canonical` maps to one (one call site's
  /// stack ids from several processes).
  public mutating func mergeKeys(_ canonical: (BreakdownKey) -> BreakdownKey) {
    var merged: [BreakdownKey: Log2Histogram] = [:]
    for (key, histogram) in histograms { merged[canonical(key), default: Log2Histogram()].add(buckets: histogram.buckets) }
    histograms = merged
  }

  public mutating func reset() {
    histograms.removeAll(keepingCapacity: true)
  }
}

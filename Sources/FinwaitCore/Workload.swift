/// The container and Kubernetes pod a process runs in, read from its cgroup
/// v2 path. Covers the kubelet's two cgroup drivers (systemd:
/// `kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`; cgroupfs:
/// `kubepods/burstable/pod<uid>/<id>`) and the runtimes' own naming
/// (containerd `cri-containerd-`, CRI-O `crio-`, Docker `docker-`), also
/// outside Kubernetes (`system.slice/docker-<id>.scope`, `docker/<id>`).
public struct Workload: Sendable, Equatable {
  /// The runtime's container id: 64 lowercase hex digits.
  public var containerID: String?
  /// The pod's UID, with dashes (the systemd driver writes underscores).
  public var podUID: String?

  public init(containerID: String? = nil, podUID: String? = nil) {
    self.containerID = containerID
    self.podUID = podUID
  }

  /// Short form for text output: the first 12 digits, as `docker ps` shows.
  public var shortContainerID: String? { containerID.map { String($0.prefix(12)) } }

  /// nil when the path names neither a container nor a pod (a host process).
  public init?(cgroupPath path: String) {
    var containerID: String?
    var podUID: String?
    for component in path.split(separator: "/") {
      if let uid = Self.podUID(in: component) { podUID = uid }
      if let id = Self.containerID(in: component) { containerID = id }
    }
    guard containerID != nil || podUID != nil else { return nil }
    self.init(containerID: containerID, podUID: podUID)
  }

  /// From /proc/PID/cgroup (`ID:CONTROLLERS:PATH` lines): the first line
  /// whose path names a workload, the v2 line (`0::`) first. On hybrid hosts
  /// runtimes place containers in the v1 hierarchies, the v2 path may be `/`.
  public init?(procCgroupFile text: String) {
    let paths = text.split(separator: "\n").compactMap { line -> (v2: Bool, path: Substring)? in
      let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
      guard fields.count == 3 else { return nil }
      return (fields[0] == "0" && fields[1].isEmpty, fields[2])
    }
    for (_, path) in paths.sorted(by: { $0.v2 && !$1.v2 }) {
      if let found = Workload(cgroupPath: String(path)) {
        self = found
        return
      }
    }
    return nil
  }

  private static let runtimePrefixes = ["cri-containerd-", "crio-", "docker-", "libpod-"]

  /// `cri-containerd-<64 hex>.scope`, `crio-<64 hex>.scope`, `docker-<64 hex>.scope`,
  /// or a bare `<64 hex>` (cgroupfs driver, `docker/<id>`). `crio-conmon-<id>`
  /// is the runtime's monitor, not the container.
  static func containerID(in component: Substring) -> String? {
    var name = component
    if name.hasSuffix(".scope") { name = name.dropLast(".scope".count) }
    for prefix in runtimePrefixes where name.hasPrefix(prefix) {
      name = name.dropFirst(prefix.count)
      break
    }
    guard name.utf8.count == 64, name.utf8.allSatisfy(isLowercaseHex) else { return nil }
    return String(name)
  }

  /// `kubepods-besteffort-pod<uid with _>.slice` (systemd) or `pod<uid>` (cgroupfs).
  static func podUID(in component: Substring) -> String? {
    var name = component
    if name.hasSuffix(".slice") {
      // kubepods-besteffort-pod<uid>.slice: the UID holds no "-pod".
      let words = name.dropLast(".slice".count).split(separator: "-", omittingEmptySubsequences: false)
      guard let last = words.last, last.hasPrefix("pod") else { return nil }
      name = last.dropFirst(3)
    } else {
      guard name.hasPrefix("pod") else { return nil }
      name = name.dropFirst(3)
    }
    let uid = String(name.map { $0 == "_" ? "-" : $0 })
    return isUUID(uid) ? uid : nil
  }

  /// 8-4-4-4-12 hex digits (lowercase, as Kubernetes writes them).
  static func isUUID(_ s: String) -> Bool {
    let groups = s.split(separator: "-", omittingEmptySubsequences: false)
    guard groups.map(\.utf8.count) == [8, 4, 4, 4, 12] else { return false }
    return groups.allSatisfy { $0.utf8.allSatisfy(isLowercaseHex) }
  }

  private static func isLowercaseHex(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 97 && b <= 102)
  }
}

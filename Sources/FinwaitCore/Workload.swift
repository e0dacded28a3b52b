/// The container and Kubernetes pod a process runs in, read from its cgroup
/// v2 path. Covers the kubelet's two cgroup drivers (systemd:
/// `kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope`; cgroupfs:
/// `kubepods/burstable/pod<uid>/<id>`) and the runtimes' own naming
/// (containerd `cri-containerd-`, CRI-O `crio-`, Docker `docker-`), also
/// outside Kubernetes (`system.slice/docker-<id>.scope`, `docker/<id>`).
public struct Workload: Sendable, Equatable {
  /// The runtime's container id: 64 hex digits, held as 32 bytes.
  public var container: ContainerID?
  /// The pod's UID (the systemd driver writes it with underscores).
  public var pod: PodUID?

  public init(container: ContainerID? = nil, pod: PodUID? = nil) {
    self.container = container
    self.pod = pod
  }

  /// From text, for tests and callers that have strings.
  public init(containerID: String? = nil, podUID: String? = nil) {
    self.init(container: containerID.flatMap { ContainerID($0[...]) }, pod: podUID.flatMap { PodUID($0[...]) })
  }

  /// `container 3f1b2c4d5e6f, pod <uid>`, the parts known.
  public var summary: String {
    [shortContainerID.map { "container \($0)" }, podUID.map { "pod \($0)" }].compactMap { $0 }.joined(separator: ", ")
  }

  public var containerID: String? { container?.text }
  public var podUID: String? { pod?.text }
  /// Short form for text output: the first 12 digits, as `docker ps` shows.
  public var shortContainerID: String? { container.map { String($0.text.prefix(12)) } }

  /// nil when the path names neither a container nor a pod (a host process).
  public init?(cgroupPath path: String) {
    var container: ContainerID?
    var pod: PodUID?
    for component in path.split(separator: "/") {
      if let uid = Self.podUID(in: component) { pod = uid }
      if let id = Self.containerID(in: component) { container = id }
    }
    guard container != nil || pod != nil else { return nil }
    self.init(container: container, pod: pod)
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
  static func containerID(in component: Substring) -> ContainerID? {
    var name = component
    if name.hasSuffix(".scope") { name = name.dropLast(".scope".count) }
    for prefix in runtimePrefixes where name.hasPrefix(prefix) {
      name = name.dropFirst(prefix.count)
      break
    }
    return ContainerID(name)
  }

  /// `kubepods-besteffort-pod<uid with _>.slice` (systemd) or `pod<uid>` (cgroupfs).
  static func podUID(in component: Substring) -> PodUID? {
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
    return PodUID(name, separator: name.contains("_") ? "_" : "-")
  }
}

/// 64 lowercase hex digits, held inline: records that carry one stay plain
/// memory to copy (a String would add reference counting to every copy).
public struct ContainerID: Sendable, Hashable {
  private var words: (UInt64, UInt64, UInt64, UInt64)

  /// nil unless exactly 64 lowercase hex digits.
  public init?(_ text: Substring) {
    let digits = Array(text.utf8)
    guard digits.count == 64 else { return nil }
    var words: [UInt64] = [0, 0, 0, 0]
    for (i, d) in digits.enumerated() {
      guard let v = lowercaseHexValue(d) else { return nil }
      words[i / 16] = words[i / 16] << 4 | UInt64(v)
    }
    self.words = (words[0], words[1], words[2], words[3])
  }

  public static func == (a: ContainerID, b: ContainerID) -> Bool {
    a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
  }

  public func hash(into hasher: inout Hasher) {
    hasher.combine(words.0)
    hasher.combine(words.1)
    hasher.combine(words.2)
    hasher.combine(words.3)
  }

  public var text: String {
    var line = LineBuffer(capacity: 64)
    line.append(self)
    return line.text
  }

  /// The first `digits` hex digits (all 64 by default).
  func forEachDigit(_ digits: Int = 64, _ body: (UInt8) -> Void) {
    let all = [words.0, words.1, words.2, words.3]
    for i in 0..<min(digits, 64) {
      body(UInt8(truncatingIfNeeded: all[i / 16] >> UInt64(60 - 4 * (i % 16))) & 0xf)
    }
  }
}

/// A pod UID (a UUID: 8-4-4-4-12 lowercase hex digits), held inline.
public struct PodUID: Sendable, Hashable {
  private var high: UInt64
  private var low: UInt64

  /// nil unless 8-4-4-4-12 lowercase hex digits joined by `separator`.
  public init?(_ text: Substring, separator: Character = "-") {
    let groups = text.split(separator: separator, omittingEmptySubsequences: false)
    guard groups.map(\.utf8.count) == [8, 4, 4, 4, 12] else { return nil }
    var value: (UInt64, UInt64) = (0, 0)
    var n = 0
    for group in groups {
      for d in group.utf8 {
        guard let v = lowercaseHexValue(d) else { return nil }
        if n < 16 { value.0 = value.0 << 4 | UInt64(v) } else { value.1 = value.1 << 4 | UInt64(v) }
        n += 1
      }
    }
    high = value.0
    low = value.1
  }

  public var text: String {
    var line = LineBuffer(capacity: 36)
    line.append(self)
    return line.text
  }

  func forEachDigit(_ body: (UInt8) -> Void) {
    for i in 0..<32 {
      let word = i < 16 ? high : low
      body(UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * (i % 16))) & 0xf)
    }
  }
}

private func lowercaseHexValue(_ b: UInt8) -> UInt8? {
  switch b {
  case 48...57: b - 48
  case 97...102: b - 87
  default: nil
  }
}

extension LineBuffer {
  /// A container id, or its first `digits` hex digits.
  public mutating func append(_ id: ContainerID, digits: Int = 64) {
    id.forEachDigit(digits) { append(hexDigit: $0) }
  }

  /// 8-4-4-4-12.
  public mutating func append(_ uuid: PodUID) {
    var n = 0
    uuid.forEachDigit { digit in
      if n == 8 || n == 12 || n == 16 || n == 20 { append(ascii: "-") }
      append(hexDigit: digit)
      n += 1
    }
  }

  private mutating func append(hexDigit d: UInt8) {
    append(byte: d < 10 ? 48 + d : 87 + d)
  }
}

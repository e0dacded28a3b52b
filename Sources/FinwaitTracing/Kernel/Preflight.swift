#if canImport(Glibc)
import Glibc
#endif
import CFinwaitBPF
import FinwaitCore
import SystemPackage

/// What the kernel can do, asked of the kernel itself rather than read from
/// its version. A seam: tests feed answers a kernel here cannot give.
public struct KernelProbes: Sendable {
  /// Whether the kernel creates a BPF ring buffer; nil when it cannot be
  /// told (creating a map needs privileges the checks after this one name).
  public var ringBuffer: @Sendable () -> Bool?
  /// Whether the kernel's own BTF has the type a tp_btf program on
  /// inet_sock_set_state attaches to.
  public var tpBTF: @Sendable () -> Bool
  public var release: @Sendable () -> String

  public init(ringBuffer: @escaping @Sendable () -> Bool?, tpBTF: @escaping @Sendable () -> Bool,
              release: @escaping @Sendable () -> String) {
    self.ringBuffer = ringBuffer
    self.tpBTF = tpBTF
    self.release = release
  }

  public static let system = KernelProbes(
    ringBuffer: {
      let answer = fw_probe_ringbuf()
      return answer < 0 ? nil : answer == 1
    },
    tpBTF: { fw_probe_tp_btf() == 1 },
    release: { Preflight.kernelRelease() })
}

/// Checks made before libbpf is asked for anything, so the common failures
/// get a precise message instead of a verifier log.
public enum Preflight {
  public static let defaultBTFPath = "/sys/kernel/btf/vmlinux"
  /// BPF ring buffers (5.8) are the newest feature the program cannot do
  /// without; the release is only read when the probe cannot answer.
  public static let minimumKernel = (major: 5, minor: 8)

  public static func check(btfPath: String?, probes: KernelProbes = .system) throws(FinwaitError) {
    try checkKernel(ringBuffer: probes.ringBuffer(), release: probes.release())
    let btf = btfPath ?? defaultBTFPath
    if access(btf, R_OK) != 0 { throw .noBTF(path: btf) }
    if let btfPath {
      var prefix: [UInt8] = []
      if let fd = try? FileDescriptor.open(FilePath(btfPath), .readOnly) {
        defer { try? fd.close() }
        var bytes = [UInt8](repeating: 0, count: 4)
        let n = (try? bytes.withUnsafeMutableBytes { try fd.read(into: $0) }) ?? 0
        prefix = Array(bytes.prefix(n))
      }
      if !looksLikeBTF(prefix: prefix) {
        throw .badBTF(path: btfPath, reason: "neither raw BTF nor an ELF file")
      }
    }
    try checkPrivileges(effectiveUID: geteuid(), capabilities: effectiveCapabilities())
  }

  /// Filters that name nothing on this node now: one line each. Tracing can
  /// go on (a process or namespace may yet appear), so these are warnings.
  /// `namespaces` (a scan of every process's namespace) is read only for `--netns`.
  public static func warnings(
    for config: KernelConfig, namespaces: @autoclosure () -> [UInt32], processExists: (UInt32) -> Bool = { access("/proc/\($0)", F_OK) == 0 }
  ) -> [String] {
    var lines: [String] = []
    if let pid = config.pid, !processExists(pid) {
      lines.append("--pid \(pid): no such process is running now; only a process started later with that id would match")
    }
    if let netns = config.netns, !namespaces().contains(netns) {
      lines.append("--netns \(netns): no network namespace has that inode now (see ls -L -i /proc/PID/ns/net or ip netns); "
                   + "only one created later would match")
    }
    return lines
  }

  /// Whether `path` starts like kernel BTF: raw BTF (magic 0xEB9F, either
  /// byte order) or an ELF file (which libbpf searches for a .BTF section).
  public static func looksLikeBTF(prefix bytes: [UInt8]) -> Bool {
    if bytes.count >= 2, (bytes[0], bytes[1]) == (0x9F, 0xEB) || (bytes[0], bytes[1]) == (0xEB, 0x9F) { return true }
    return bytes.count >= 4 && bytes[0..<4].elementsEqual([0x7F, 0x45, 0x4C, 0x46])
  }

  public static func kernelRelease() -> String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: &names.release) { raw in
      String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
  }

  /// The ring buffer probe decides; its release is the message's detail.
  public static func checkKernel(ringBuffer: Bool?, release: String) throws(FinwaitError) {
    switch ringBuffer {
    case true?: return
    case false?: throw .kernelTooOld(release: release)
    case nil: try checkKernel(release: release)
    }
  }

  /// For when the probe cannot answer: the release decides.
  public static func checkKernel(release: String) throws(FinwaitError) {
    // An unparsable release is left for libbpf to judge rather than refused.
    guard let v = ProcText.kernelVersion(ofRelease: release) else { return }
    if (v.major, v.minor) < minimumKernel { throw .kernelTooOld(release: release) }
  }

  static let capSysAdmin = 21
  static let capPerfmon = 38
  static let capBPF = 39

  /// The CapEff mask of this process, from /proc/self/status.
  public static func effectiveCapabilities() -> UInt64? {
    guard let status = try? readSmallFile("/proc/self/status") else { return nil }
    return ProcText.capabilities(fromStatus: status)
  }

  /// Root is not enough inside a container that dropped capabilities, so the
  /// effective set decides whenever it can be read.
  public static func checkPrivileges(effectiveUID: uid_t, capabilities: UInt64?) throws(FinwaitError) {
    guard let caps = capabilities else {
      if effectiveUID == 0 { return }
      throw .notPermitted("not root and capabilities unreadable")
    }
    func has(_ cap: Int) -> Bool { caps & (1 << UInt64(cap)) != 0 }
    if has(capSysAdmin) || (has(capBPF) && has(capPerfmon)) { return }
    let who = effectiveUID == 0 ? "root without capabilities" : "not root (uid \(effectiveUID))"
    throw .notPermitted("\(who): missing CAP_BPF/CAP_PERFMON")
  }
}

/// Reads a small text file (procfs, sysfs) whole.
public func readSmallFile(_ path: String, limit: Int = 1 << 16) throws(Errno) -> String {
  let fd: FileDescriptor
  do { fd = try FileDescriptor.open(FilePath(path), .readOnly) } catch { throw error as? Errno ?? .ioError }
  defer { try? fd.close() }
  var bytes: [UInt8] = []
  var chunk = [UInt8](repeating: 0, count: 4096)
  while bytes.count < limit {
    let n: Int
    do {
      n = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
    } catch {
      throw error as? Errno ?? .ioError
    }
    if n == 0 { break }
    bytes += chunk[0..<n]
  }
  return String(decoding: bytes, as: UTF8.self)
}

/// The network namespace's `net.ipv4.tcp_fin_timeout`, in seconds.
public func tcpFinTimeoutSeconds() -> Int? {
  guard let text = try? readSmallFile("/proc/sys/net/ipv4/tcp_fin_timeout") else { return nil }
  return ProcText.finTimeoutSeconds(fromSysctl: text)
}

#if canImport(Glibc)
import Glibc
#endif
import SystemPackage

/// Checks made before libbpf is asked for anything, so the common failures
/// get a precise message instead of a verifier log.
public enum Preflight {
  public static let defaultBTFPath = "/sys/kernel/btf/vmlinux"
  /// BPF ring buffers (5.8) are the newest feature the program cannot do without.
  public static let minimumKernel = (major: 5, minor: 8)

  public static func check(btfPath: String?) throws(FinwaitError) {
    try checkKernel(release: kernelRelease())
    let btf = btfPath ?? defaultBTFPath
    if access(btf, R_OK) != 0 { throw .noBTF(path: btf) }
    try checkPrivileges(effectiveUID: geteuid(), capabilities: effectiveCapabilities())
  }

  public static func kernelRelease() -> String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: &names.release) { raw in
      String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
    }
  }

  /// `5.15.0-91-generic` -> (5, 15); nil when it does not start with two numbers.
  public static func version(ofRelease release: String) -> (major: Int, minor: Int)? {
    let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    guard numbers.count == 2, release.first?.isNumber == true else { return nil }
    return (numbers[0], numbers[1])
  }

  public static func checkKernel(release: String) throws(FinwaitError) {
    // An unparsable release is left for libbpf to judge rather than refused.
    guard let v = version(ofRelease: release) else { return }
    if (v.major, v.minor) < minimumKernel { throw .kernelTooOld(release: release) }
  }

  static let capSysAdmin = 21
  static let capPerfmon = 38
  static let capBPF = 39

  /// The CapEff mask of this process, from /proc/self/status.
  public static func effectiveCapabilities() -> UInt64? {
    guard let status = try? readSmallFile("/proc/self/status") else { return nil }
    return capabilities(fromStatus: status)
  }

  public static func capabilities(fromStatus status: String) -> UInt64? {
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
      return UInt64(line.dropFirst("CapEff:".count).trimmingPrefix(while: \.isWhitespace), radix: 16)
    }
    return nil
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
  return Int(text.trimmingPrefix(while: \.isWhitespace).prefix(while: { $0.isNumber }))
}

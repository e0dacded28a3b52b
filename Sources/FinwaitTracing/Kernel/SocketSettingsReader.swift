#if canImport(Glibc)
import Glibc
#endif
import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore
import SystemPackage

/// Each TCP socket's own keepalive, TCP_LINGER2 and TCP_USER_TIMEOUT
/// settings, read exactly with an iter/tcp BPF program (bpf/sockets.bpf.c,
/// its own small object). Only full sockets in FIN_WAIT2 or CLOSE_WAIT.
public final class SocketSettingsReader {
  private let handle: OpaquePointer
  private let namespaces: Namespaces
  /// The kernel's jiffies per second, learnt from the first record.
  private var hz: UInt64?

  /// The states read: what the doctor diagnoses.
  public static let states: [DiagSocket.State] = [.finWait2, .closeWait]

  /// Loads and attaches the iterator (CAP_BPF and CAP_PERFMON).
  public init(namespaces: Namespaces) throws(FinwaitError) {
    let mask = SockDiag.mask(Self.states)
    var out: OpaquePointer?
    var failed = FW_STAGE_NONE
    let rc = fw_sockets_open(mask, &out, &failed)
    guard rc == 0, let out else { throw Self.error(-rc, at: failed) }
    handle = out
    self.namespaces = namespaces
  }

  deinit { fw_sockets_close(handle) }

  /// Whether the records carry socket cookies (Linux 5.12+).
  public var hasCookies: Bool { fw_sockets_have_cookie(handle) != 0 }

  /// The sockets of network namespace `netns` in FIN_WAIT2 or CLOSE_WAIT,
  /// keyed by their own local -> remote view.
  public func settings(netns: UInt32) throws(FinwaitError) -> [Endpoints: SocketSettings] {
    let collector = Collector()
    let box = Unmanaged.passUnretained(collector).toOpaque()
    let read: Int32? = namespaces.withNamespace(netns) { fd in
      fw_sockets_read(handle, fd, { ctx, raw in
        guard let ctx, let raw else { return 0 }
        Unmanaged<Collector>.fromOpaque(ctx).takeUnretainedValue().records.append(raw.pointee)
        return 0
      }, box)
    }
    guard let rc = read else { throw .diag("socket settings: network namespace \(netns) cannot be entered (no process or /run/netns entry in it)") }
    if rc < 0 {
      let errno = Errno(rawValue: -rc)
      if errno == .notPermitted {
        throw .notPermitted("entering network namespace \(netns) needs CAP_SYS_ADMIN")
      }
      throw .diag("socket settings: reading the TCP socket iterator of network namespace \(netns) failed: \(errno)")
    }
    var result: [Endpoints: SocketSettings] = [:]
    result.reserveCapacity(collector.records.count)
    if hz == nil, let first = collector.records.first {
      // Times are jiffies. HZ is the namespace's tcp_keepalive_time in
      // jiffies over the sysctl's seconds: exact, and no kernel config file needed.
      let seconds = namespaces.tcpSysctls(of: netns).keepaliveTime.map { $0 / 1_000_000_000 } ?? 0
      guard let derived = SocketSettings.hz(keepaliveTimeJiffies: first.netns_keepalive_time, keepaliveTimeSeconds: seconds)
      else {
        throw .diag("socket settings: the kernel's HZ cannot be told (tcp_keepalive_time is \(first.netns_keepalive_time) "
                    + "jiffies and \(seconds) s in network namespace \(netns)), so times cannot be converted")
      }
      hz = derived
    }
    for raw in collector.records {
      let settings: SocketSettings
      do {
        settings = try SocketSettings(decoding: raw, hz: hz ?? 0)
      } catch {
        throw .diag("socket settings: a record of the TCP socket iterator is malformed (\(error))")
      }
      result[settings.endpoints] = settings
    }
    return result
  }

  private final class Collector {
    var records: [fw_sock_settings] = []
  }

  static func error(_ code: Int32, at stage: fw_stage) -> FinwaitError {
    let errno = Errno(rawValue: code)
    let stageName = Tracer.stageName(stage)
    if errno == .notPermitted || errno == .permissionDenied {
      // Iterators are tracing programs: loading needs CAP_BPF and CAP_PERFMON.
      let effective = Preflight.effectiveCapabilities()
      let missing = [Capability.bpf, .perfmon].filter { cap in effective.map { $0 & cap.bit == 0 } ?? true }
      let names = missing.isEmpty ? "CAP_BPF and CAP_PERFMON" : missing.map { $0.name }.joined(separator: " and ")
      return .notPermitted("the kernel refused to \(stageName) the socket iterator (\(errno)): it needs \(names)")
    }
    if (4000..<4100).contains(code) {
      return .bpfDetail(stage: stageName, detail: Tracer.libbpfMessage(code))
    }
    return .bpf(stage: stageName, errno: errno)
  }
}

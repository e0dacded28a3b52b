#if canImport(Glibc)
import Glibc
#endif
import CFinwaitSystem

/// How finwait says it is attached and tracing, without anyone matching
/// banner text: `ready` on a descriptor the caller passed (`--ready-fd N`,
/// then closed), `READY=1` to systemd when $NOTIFY_SOCKET is set, and, in
/// JSON output, a `{"type":"ready"}` record (written by the mode).
public struct Readiness: Sendable {
  /// `--ready-fd`: a descriptor inherited from the caller.
  public var fd: Int32?
  /// `$NOTIFY_SOCKET`: systemd's (Type=notify) datagram socket.
  public var notifySocket: String?

  public init(fd: Int32? = nil, notifySocket: String? = nil) {
    self.fd = fd
    self.notifySocket = notifySocket
  }

  /// `fd`, and $NOTIFY_SOCKET from the environment.
  public static func fromEnvironment(fd: Int32?) -> Readiness {
    Readiness(fd: fd, notifySocket: getenv("NOTIFY_SOCKET").map { String(cString: $0) })
  }

  /// Once, when the loop is attached and has adopted what existed. Failures
  /// are not fatal: tracing goes on, and the caller sees no signal.
  public func signal() {
    if let fd {
      let line = Array("ready\n".utf8)
      _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
      close(fd)
    }
    if let notifySocket, !notifySocket.isEmpty {
      _ = fw_notify_socket(notifySocket, "READY=1")
    }
  }
}

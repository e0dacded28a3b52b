/// Programs whose own settings govern how long they hold a half-closed
/// connection, as docs/programs.md cites them from each program's
/// documentation. Doctor adds that setting to a verdict when the owner of a
/// FIN_WAIT2 connection, or the local peer in CLOSE_WAIT, is one of them.
public enum KnownProgram: String, Sendable, CaseIterable {
  case nginx, haproxy, envoy, kubeProxy = "kube-proxy", go

  /// The program from a task's `comm` (the kernel's thread name, at most 15
  /// bytes) and whether its executable is a Go binary. Specific programs
  /// come before Go: kube-proxy is a Go binary with a setting of its own.
  public static func identify(comm: String, isGoBinary: Bool) -> KnownProgram? {
    // A comm read from a kernel record or /proc may keep its NUL padding or newline.
    let name = String(comm.prefix { $0 != "\0" && $0 != "\n" })
    // Envoy's main thread keeps the executable's name; its workers, which
    // hold the proxied connections, are "wrk:worker_N" (worker_impl.cc).
    let worker = name.dropFirst("wrk:worker_".count)
    if name.hasPrefix("wrk:worker_"), !worker.isEmpty, worker.allSatisfy({ ("0"..."9").contains($0) }) {
      return .envoy
    }
    switch name {
    case "nginx": return .nginx
    case "haproxy": return .haproxy
    case "kube-proxy": return .kubeProxy
    case "envoy": return .envoy
    default: return isGoBinary ? .go : nil
    }
  }

  /// What bounds `situation` in this program, or nil where its
  /// documentation has nothing that does (docs/programs.md says so).
  public func advice(for situation: Situation) -> Advice? {
    let reference = "docs/programs.md#\(rawValue)"
    switch (self, situation) {
    case (.nginx, .holdsFinWait2):
      return Advice(
        settings: ["lingering_time", "lingering_timeout", "proxy_half_close", "proxy_timeout"],
        text: "nginx half-closes a client connection for lingering close for at most lingering_time (default 30s, "
          + "lingering_timeout 5s between reads), and a stream proxy with proxy_half_close on (default off) keeps a "
          + "half-closed connection until proxy_timeout (default 10m) of silence: lower those to free it sooner.",
        reference: reference)
    case (.nginx, .holdsCloseWait):
      return Advice(
        settings: ["proxy_half_close", "proxy_timeout", "proxy_ignore_client_abort", "proxy_read_timeout"],
        text: "nginx keeps a connection whose peer already closed only while it proxies the other direction: in a "
          + "stream server with proxy_half_close on (default off) until proxy_timeout (default 10m), in http with "
          + "proxy_ignore_client_abort on (default off) until proxy_read_timeout (default 60s); lower or turn them off.",
        reference: reference)
    case (.haproxy, .holdsFinWait2):
      return Advice(
        settings: ["timeout client-fin", "timeout server-fin", "timeout client"],
        text: "Set timeout client-fin (frontend) and timeout server-fin (backend): unset by default, a half-closed "
          + "connection falls back to timeout client/server or timeout tunnel, and an unset timeout client never "
          + "expires.",
        reference: reference)
    case (.haproxy, .holdsCloseWait):
      return Advice(
        settings: ["option abortonclose", "timeout client", "timeout client-fin"],
        text: "HAProxy by default still serves a request whose client closed its side; option abortonclose (off by "
          + "default) aborts it while queued or connecting, and timeout client / timeout client-fin (unset: no "
          + "limit) bound the rest.",
        reference: reference)
    case (.envoy, .holdsFinWait2):
      return Advice(
        settings: ["TcpProxy.idle_timeout", "HttpConnectionManager.delayed_close_timeout"],
        text: "An Envoy TCP proxy waits for the peer's FIN after passing a half-close on until TcpProxy.idle_timeout "
          + "(default 1 hour, 0s disables it) of silence, the HTTP connection manager for "
          + "HttpConnectionManager.delayed_close_timeout (default 1000 ms): lower idle_timeout on that listener.",
        reference: reference)
    case (.envoy, .holdsCloseWait):
      return Advice(
        settings: ["TcpProxy.idle_timeout", "TcpProxy.max_downstream_connection_duration"],
        text: "An Envoy TCP proxy keeps the side that closed open while the other direction is proxied, until "
          + "TcpProxy.idle_timeout (default 1 hour) of silence or TcpProxy.max_downstream_connection_duration "
          + "(not set by default): lower or set them on that listener.",
        reference: reference)
    case (.kubeProxy, .holdsFinWait2):
      return Advice(
        settings: ["--proxy-mode"],
        text: "kube-proxy holds proxied connections only in the userspace --proxy-mode (removed in Kubernetes 1.26), "
          + "which no flag bounds: run iptables (the Linux default) or ipvs mode, where the kernel forwards them.",
        reference: reference)
    case (.kubeProxy, .holdsCloseWait):
      return Advice(
        settings: ["--proxy-mode", "--conntrack-tcp-timeout-close-wait"],
        text: "kube-proxy holds proxied connections only in the userspace --proxy-mode (removed in Kubernetes 1.26); "
          + "--conntrack-tcp-timeout-close-wait (default 1h0m0s) bounds only the NAT entry, after which a late FIN "
          + "through the Service is not translated.",
        reference: reference)
    case (.go, .holdsFinWait2):
      return Advice(
        settings: ["net.TCPConn.CloseWrite", "net.Conn.SetReadDeadline", "net.Dialer.KeepAlive",
                   "net.ListenConfig.KeepAlive"],
        text: "Go starts no timer after net.TCPConn.CloseWrite: set a net.Conn.SetReadDeadline (none by default) and "
          + "Close when it expires; keep-alive (net.Dialer.KeepAlive, net.ListenConfig.KeepAlive, on by default, "
          + "15 s) ends it only if the peer is gone.",
        reference: reference)
    case (.go, .holdsCloseWait):
      return Advice(
        settings: ["http.Server.IdleTimeout", "http.Server.ReadTimeout"],
        text: "A Go program holds CLOSE_WAIT until it calls Close after a Read returns io.EOF; net/http servers close "
          + "idle keep-alive connections after http.Server.IdleTimeout (zero falls back to http.Server.ReadTimeout, "
          + "no timeout if both are zero).",
        reference: reference)
    }
  }
}

extension KnownProgram {
  /// Which side of a half-close the program is stuck on.
  public enum Situation: String, Sendable {
    /// It sent its FIN (shutdown or close) and waits for the peer's.
    case holdsFinWait2 = "fin_wait2"
    /// It received the peer's FIN and has not closed.
    case holdsCloseWait = "close_wait"
  }

  /// A program's own setting for a situation, as docs/programs.md cites it.
  public struct Advice: Sendable, Equatable {
    /// The settings' names as the program's documentation spells them.
    public var settings: [String]
    /// One sentence a person can act on, naming the settings and defaults.
    public var text: String
    /// The section of docs/programs.md that cites them.
    public var reference: String

    public init(settings: [String], text: String, reference: String) {
      self.settings = settings
      self.text = text
      self.reference = reference
    }
  }
}

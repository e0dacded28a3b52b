import ArgumentParser
import FinwaitCore
import FinwaitTracing

@main
struct Finwait: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "finwait",
    abstract: "Trace TCP connections through FIN_WAIT2: dwell, owner, code path and end.",
    discussion: """
      Every connection whose FIN_WAIT2 ends is printed with the process that sent the \
      FIN (pid, comm, cgroup), the code path (shutdown_wr, shutdown_rdwr, close, exit, \
      other), whether the socket was still attached to its process or orphaned, the \
      dwell and how it ended. Attached connections still in FIN_WAIT2 after --stuck \
      are reported once while they are stuck. A summary with dwell histograms is \
      printed on Ctrl-C, SIGTERM or after --duration.

      EXAMPLES:
        finwait                      # trace everything
        finwait --port 8080          # connections with local or remote port 8080
        finwait --comm nginx --json  # JSON lines for nginx's connections
        finwait --stuck 30s          # warn about attached FIN_WAIT2 older than 30 s
        finwait --min-dwell 1s -d 10m
      """,
    version: "0.1.0"
  )

  @Option(name: [.short, .long], help: "Trace only connections owned by this process id.")
  var pid: UInt32?

  @Option(help: "Trace only connections owned by processes with this name (15 characters at most).")
  var comm: String?

  @Option(help: "Trace only connections with this local or remote port.")
  var port: UInt16?

  @Option(help: "Trace only IPv4 (4) or IPv6 (6).")
  var family: Int?

  @Option(name: .customLong("min-dwell"), help: "Print only connections whose FIN_WAIT2 lasted at least this long (e.g. 500ms, 2s).",
          transform: Self.duration)
  var minDwell: UInt64?

  @Option(help: ArgumentHelp("Warn once about an attached connection in FIN_WAIT2 for longer than this, or 'off'.",
                             discussion: "Default: the node's net.ipv4.tcp_fin_timeout."))
  var stuck: String?

  @Option(name: [.short, .long], help: "Stop after this long (e.g. 30s, 10m).", transform: Self.duration)
  var duration: UInt64?

  @Flag(help: "Print JSON lines instead of text.")
  var json = false

  @Flag(name: [.short, .long], help: "Print libbpf's messages.")
  var verbose = false

  @Option(name: .customLong("max-tracked"), help: "Sockets tracked at once in the kernel (beyond it: counted as untracked).")
  var maxTracked: UInt32 = 65_536

  @Option(help: ArgumentHelp("Kernel BTF to use instead of /sys/kernel/btf/vmlinux.", valueName: "path"))
  var btf: String?

  /// One line per error (`finwait: error: ...`, see `--help` for usage)
  /// instead of the parser's error + usage block; help and version as usual.
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch {
      let code = exitCode(for: error)
      if code == .success {
        print(fullMessage(for: error))
      } else {
        let text = message(for: error)
        if !text.isEmpty {
          var err = LineOutput.standardError
          try? err.write("finwait: error: \(text) (see finwait --help)")
          try? err.flush()
        }
      }
      exit(withError: code == .success ? nil : ExitCode(code.rawValue))
    }
  }

  static func duration(_ text: String) throws -> UInt64 {
    guard let ns = parseDuration(text) else {
      throw ValidationError("'\(text)' is not a duration: use a number with ns, us, ms, s, m or h (bare numbers are seconds)")
    }
    return ns
  }

  func validate() throws {
    if let family, family != 4 && family != 6 { throw ValidationError("--family must be 4 or 6") }
    if let comm, comm.isEmpty || comm.utf8.count > 15 {
      throw ValidationError("--comm must be 1 to 15 bytes (the kernel's comm length)")
    }
    if pid == 0 { throw ValidationError("--pid must be a process id above 0") }
    if port == 0 { throw ValidationError("--port must be 1 to 65535") }
    if let stuck, stuck != "off", parseDuration(stuck) == nil {
      throw ValidationError("--stuck '\(stuck)' is not a duration or 'off'")
    }
    if maxTracked < 64 { throw ValidationError("--max-tracked must be at least 64") }
    if duration == 0 { throw ValidationError("--duration must be above 0") }
  }

  func run() throws {
    let finTimeout = tcpFinTimeoutSeconds()
    var config = TraceSession.Configuration()
    config.tracer.pid = pid ?? 0
    config.tracer.comm = comm
    config.tracer.port = port ?? 0
    config.tracer.family = family ?? 0
    config.tracer.maxTracked = maxTracked
    config.tracer.btfPath = btf
    config.format = json ? .json : .text
    config.minDwell = minDwell ?? 0
    config.duration = duration
    config.verbose = verbose
    config.finTimeoutSeconds = finTimeout
    switch stuck {
    case "off": config.stuckAfter = nil
    case let text?: config.stuckAfter = parseDuration(text)
    case nil: config.stuckAfter = UInt64(finTimeout ?? 60) * 1_000_000_000
    }
    do {
      try TraceSession(configuration: config).run()
    } catch {
      var err = LineOutput.standardError
      try? err.write("finwait: error: \(error.message)")
      try? err.flush()
      throw ExitCode(error.exitCode)
    }
  }
}

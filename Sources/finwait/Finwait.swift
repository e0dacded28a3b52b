import ArgumentParser
import FinwaitCore
import FinwaitTracing

@main
struct Finwait: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "finwait",
    abstract: "Trace TCP connections through FIN_WAIT2: dwell, owner, code path and end.",
    version: Build.version,
    subcommands: [TraceCommand.self, HistCommand.self, TopCommand.self, SnapshotCommand.self, ServeCommand.self,
                  DoctorCommand.self],
    defaultSubcommand: TraceCommand.self
  )

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
        if !text.isEmpty { printError("\(text) (see finwait --help)") }
      }
      exit(withError: code == .success ? nil : ExitCode(code.rawValue))
    }
  }
}

/// Turns a FinwaitError into its one line on stderr and its exit code.
func reportingErrors(_ body: () throws(FinwaitError) -> Void) throws {
  do {
    try body()
  } catch {
    printError(error.message)
    throw ExitCode(error.exitCode)
  }
}

/// The one line every failure prints.
func printError(_ text: String) {
  let err = LineOutput.standardError
  try? err.write("finwait: error: \(text)")
  try? err.flush()
}

/// Runs `mode` in the tracing loop on this node, with the flags every
/// tracing command shares; `without` says what it does without sock_diag.
func runTracingLoop(
  _ mode: any TracingMode, _ configuration: TracingLoop.Configuration, tracing: TracerOptions, without: String
) throws {
  try reportingErrors { () throws(FinwaitError) in
    let environment = try LoopEnvironment.system(
      configuration, reconcile: !tracing.noReconcile, verbose: tracing.verbose,
      readiness: .fromEnvironment(fd: tracing.readyFD), without: without)
    try TracingLoop(configuration: configuration, environment: environment, mode: mode).run()
  }
}

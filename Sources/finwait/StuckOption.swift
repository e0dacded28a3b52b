import ArgumentParser
import FinwaitCore

/// `--stuck D|off`, shared by trace and serve: an attached connection in
/// FIN_WAIT2 longer than D is stuck. Default: the node's tcp_fin_timeout.
struct StuckOption: ParsableArguments {
  @Option(help: ArgumentHelp("An attached connection in FIN_WAIT2 for longer than this is stuck (reported once), or 'off'.",
                             discussion: "Default: the node's net.ipv4.tcp_fin_timeout.", valueName: "duration"))
  var stuck: String?

  func validate() throws {
    if let stuck, stuck != "off", parseDuration(stuck) == nil {
      throw ValidationError("--stuck '\(stuck)' is not a duration or 'off'")
    }
  }

  /// Nanoseconds; nil: off.
  func threshold(finTimeoutSeconds: Int?) -> UInt64? {
    switch stuck {
    case "off": nil
    case let text?: parseDuration(text)
    case nil: UInt64(finTimeoutSeconds ?? 60) * 1_000_000_000
    }
  }
}

import CFinwaitBPF
import FinwaitCore

/// What every command that attaches does first: the preflight checks,
/// libbpf's verbosity, the stop handlers, and sock_diag when `reconcile`
/// asks for it. sock_diag that cannot be used is a warning, not an error:
/// `without` says on stderr what the command then does without it.
func startSession(
  btfPath: String?, verbose: Bool, reconcile: Bool, without: String
) throws(FinwaitError) -> Reconciliation? {
  try Preflight.check(btfPath: btfPath)
  fw_set_libbpf_verbose(verbose ? 1 : 0)
  fw_install_stop_handlers()
  guard reconcile else { return nil }
  let reconciliation = Reconciliation()
  do {
    try reconciliation.check()
    return reconciliation
  } catch {
    var err = LineOutput.standardError
    try err.write("finwait: warning: \(error.message); \(without)")
    return nil
  }
}

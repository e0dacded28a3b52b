import CFinwaitSystem
import FinwaitCore
import SystemPackage

extension Capability {
  /// The optional capabilities this process lacks now (`serve` turns their
  /// features off, with one warning each).
  public static func missingOptionalNow() -> [Capability] {
    missingOptional(effective: Preflight.effectiveCapabilities() ?? 0)
  }

  /// Once attached: keeps only `keptAfterAttach` of what this process has.
  public static func dropAllButKeptAfterAttach() -> Errno? {
    let effective = Preflight.effectiveCapabilities() ?? 0
    let rc = fw_keep_capabilities(keepMask(effective: effective))
    return rc == 0 ? nil : Errno(rawValue: -rc)
  }
}

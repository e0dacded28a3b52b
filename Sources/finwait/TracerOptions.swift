#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FinwaitCore
import FinwaitTracing

extension AttachMode: ExpressibleByArgument {}

/// How the program is loaded and what it may lean on: the same for trace,
/// hist and top.
struct TracerOptions: ParsableArguments {
  @Flag(name: .customLong("no-reconcile"),
        help: "No sock_diag: orphans in timewait are not followed to their end, existing connections are not listed.")
  var noReconcile = false

  @Option(name: .customLong("max-tracked"), help: "Sockets tracked at once in the kernel (beyond it: counted as map_full).")
  var maxTracked: UInt32 = KernelConfig().maxTracked

  @Option(help: ArgumentHelp("Kernel BTF to use instead of /sys/kernel/btf/vmlinux.", valueName: "path"))
  var btf: String?

  @Option(help: ArgumentHelp(
    "How to attach to sock:inet_sock_set_state: auto, tp_btf or tracepoint.",
    discussion: "auto (default): tp_btf when the kernel's own BTF has the tracepoint, else the classic tracepoint "
      + "(tracefs is mounted for the attach if it is not). Forcing tp_btf where the kernel cannot do it exits 69.",
    valueName: "mode"))
  var attach: AttachMode = .auto

  @Flag(name: [.short, .long], help: "Print libbpf's messages and how the program was attached.")
  var verbose = false

  @Option(name: .customLong("ready-fd"), help: ArgumentHelp(
    "Write 'ready' to this inherited file descriptor once attached, then close it.",
    discussion: "With $NOTIFY_SOCKET set (systemd Type=notify), READY=1 is sent there too.", valueName: "fd"))
  var readyFD: Int32?

  func validate() throws {
    if maxTracked < 64 || maxTracked > KernelConfig.maxTrackedLimit {
      throw ValidationError("--max-tracked must be 64 to \(KernelConfig.maxTrackedLimit) sockets")
    }
    if let readyFD, readyFD < 3 { throw ValidationError("--ready-fd must be an inherited descriptor above 2") }
  }

  func apply(to config: inout TracingLoop.Configuration) {
    config.kernel.maxTracked = maxTracked
    config.btfPath = btf
    config.attach = attach
    // Tests only (CONTRIBUTING.md): the pre-5.15 register reader on this kernel.
    config.kernel.userRegistersFromStack = getenv("FINWAIT_REGS_FROM_STACK").map { String(cString: $0) } == "1"
  }
}

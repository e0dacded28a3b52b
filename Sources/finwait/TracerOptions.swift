import ArgumentParser
import FinwaitTracing

/// How the program is loaded and what it may lean on: the same for trace,
/// hist and top.
struct TracerOptions: ParsableArguments {
  @Flag(name: .customLong("no-reconcile"),
        help: "No sock_diag: orphans in timewait are not followed to their end, existing connections are not listed.")
  var noReconcile = false

  @Option(name: .customLong("max-tracked"), help: "Sockets tracked at once in the kernel (beyond it: counted as untracked).")
  var maxTracked: UInt32 = 65_536

  @Option(help: ArgumentHelp("Kernel BTF to use instead of /sys/kernel/btf/vmlinux.", valueName: "path"))
  var btf: String?

  @Flag(name: [.short, .long], help: "Print libbpf's messages.")
  var verbose = false

  func validate() throws {
    if maxTracked < 64 { throw ValidationError("--max-tracked must be at least 64") }
  }

  func apply(to tracer: inout Tracer.Options) {
    tracer.maxTracked = maxTracked
    tracer.btfPath = btf
  }
}

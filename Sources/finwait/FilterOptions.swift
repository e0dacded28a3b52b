import ArgumentParser
import FinwaitCore
import FinwaitTracing

/// Filters shared by tracing and snapshots.
struct FilterOptions: ParsableArguments {
  @Option(name: [.short, .long], help: "Only connections owned by this process id.")
  var pid: UInt32?

  @Option(help: "Only connections owned by processes with this name (15 characters at most).")
  var comm: String?

  @Option(help: "Only connections with this local or remote port.")
  var port: UInt16?

  @Option(help: "Only IPv4 (4) or IPv6 (6).")
  var family: Int?

  @Option(help: ArgumentHelp("Only this network namespace (inode number, as `ls -L -i /proc/PID/ns/net` shows).",
                             valueName: "inode"))
  var netns: UInt32?

  func validate() throws {
    if let family, family != 4 && family != 6 { throw ValidationError("--family must be 4 or 6") }
    if let comm, comm.isEmpty || comm.utf8.count > 15 {
      throw ValidationError("--comm must be 1 to 15 bytes (the kernel's comm length)")
    }
    if pid == 0 { throw ValidationError("--pid must be a process id above 0") }
    if port == 0 { throw ValidationError("--port must be 1 to 65535") }
    if netns == 0 { throw ValidationError("--netns must be a namespace inode number") }
  }

  /// The filters are the kernel's configuration: one value, flags to BPF.
  func apply(to config: inout KernelConfig) {
    config.pid = pid
    config.comm = comm
    config.port = port
    config.family = family
    config.netns = netns
  }
}

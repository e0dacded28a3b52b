#if canImport(Glibc)
import Glibc
#endif
import CFinwaitBPF
import CFinwaitEvent
import FinwaitCore

/// Which process holds a socket: socket inode -> process. Read in one pass
/// over every process's file table by a BPF iterator (bpf/sockets.bpf.c,
/// Linux 5.11+, CAP_BPF and CAP_PERFMON), else found the way `ss -p` does,
/// by reading every /proc/PID/fd/N link ("socket:[inode]").
public struct SocketOwners {
  /// Where a scan found the owners.
  public enum Source: String, Sendable {
    case iterator = "a BPF iterator"
    case proc = "/proc"
  }

  public private(set) var source = Source.proc
  /// Each process once; sockets point at it. A node with 400,000 sockets
  /// costs 8 bytes a socket, not an `Owner` (about 70) each.
  private var processes: [Owner] = []
  private var byInode: [UInt32: UInt32] = [:]

  /// Owners by socket inode, as a scan would find them (tests).
  public init(_ owners: [UInt32: Owner] = [:]) {
    for (inode, owner) in owners {
      byInode[inode] = UInt32(processes.count)
      processes.append(owner)
    }
  }

  /// The states whose holders finwait names: FIN_WAIT2 and the local peer's
  /// CLOSE_WAIT, and the states around them, so that a socket that moved on
  /// between a sock_diag dump and the scan (a peer's shutdown: LAST_ACK) still
  /// has its owner.
  public static let states: [DiagSocket.State] = [.finWait1, .finWait2, .closing, .closeWait, .lastAck]

  /// Owners of the TCP sockets in `states` (and, from /proc, of every other
  /// socket too), from the iterator where it loads, else from /proc.
  public static func scan(states: [DiagSocket.State] = states) -> SocketOwners {
    let forced = getenv("FINWAIT_OWNERS").map { String(cString: $0) }
    let openFiles = (try? readSmallFile("/proc/sys/fs/file-nr", limit: 128)).flatMap(ProcText.openFiles(fromFileNr:))
    if preferred(openFiles: openFiles, forced: forced, initialPIDNamespace: inInitialPIDNamespace) == .iterator,
       iteratorLoads, let owners = fromIterator(states: states) {
      return owners
    }
    return fromProc()
  }

  /// Below this many open files on the node (the first number of
  /// /proc/sys/fs/file-nr), a readlink of every /proc/PID/fd entry costs
  /// less than loading the iterator, which parses the kernel's BTF first
  /// (measured in docs/performance.md).
  public static let iteratorFromOpenFiles = 4096

  /// The source a scan tries first: the iterator on a node with many open
  /// files (or an unknown number), /proc on a quiet one, and always in a pid
  /// namespace other than the node's. `forced` is FINWAIT_OWNERS
  /// (`iterator` or `proc`), for tests.
  static func preferred(openFiles: Int?, forced: String?, initialPIDNamespace: Bool) -> Source {
    guard initialPIDNamespace else { return .proc }
    switch forced {
    case "iterator": return .iterator
    case "proc": return .proc
    default: return (openFiles ?? Int.max) >= iteratorFromOpenFiles ? .iterator : .proc
    }
  }

  /// Cleared by the first load that fails (an old kernel, or the
  /// capabilities a tracer dropped once attached): no later scan pays for a
  /// load that cannot work. A race on it costs one more attempt at most.
  nonisolated(unsafe) static var iteratorLoads = true

  /// The iterator numbers processes as the initial pid namespace does: in
  /// any other (a container without hostPID), /proc's numbers are the ones
  /// that mean something.
  static let inInitialPIDNamespace: Bool = {
    guard let status = try? readSmallFile("/proc/self/status", limit: 8192) else { return false }
    return ProcText.inInitialPIDNamespace(status: status)
  }()

  /// nil when the iterator cannot load here (kernel, capabilities).
  static func fromIterator(states: [DiagSocket.State]) -> SocketOwners? {
    let mask = SockDiag.mask(states)
    let collector = IteratorCollector()
    var failed = FW_STAGE_NONE
    let rc = fw_owners_scan(mask, { ctx, raw in
      guard let ctx, let raw else { return 0 }
      Unmanaged<IteratorCollector>.fromOpaque(ctx).takeUnretainedValue().add(raw.pointee)
      return 0
    }, Unmanaged.passUnretained(collector).toOpaque(), &failed)
    guard rc >= 0 else {
      iteratorLoads = false
      return nil
    }
    collector.owners.source = .iterator
    return collector.owners
  }

  /// Records arrive grouped by task, so a process is looked up once per
  /// task, not once per socket.
  private final class IteratorCollector {
    var owners = SocketOwners()
    var processByPID: [UInt32: UInt32] = [:]
    var last: (pid: UInt32, index: UInt32)?

    func add(_ raw: fw_sock_owner) {
      let inode = UInt32(truncatingIfNeeded: raw.inode)
      guard owners.byInode[inode] == nil else { return }  // the lowest pid holding it, as /proc's order gives
      let index: UInt32
      if let last, last.pid == raw.tgid {
        index = last.index
      } else if let known = processByPID[raw.tgid] {
        index = known
      } else {
        index = UInt32(owners.processes.count)
        owners.processes.append(Owner(holder: raw))
        processByPID[raw.tgid] = index
      }
      last = (raw.tgid, index)
      owners.byInode[inode] = index
    }
  }

  /// Scans every process's descriptors once: O(processes x fds).
  static func fromProc() -> SocketOwners {
    var owners = SocketOwners()
    var target = [CChar](repeating: 0, count: 64)
    for pid in directoryEntries("/proc") {
      guard let tgid = ProcText.processID(procEntry: pid) else { continue }
      let fdDir = "/proc/\(pid)/fd"
      var process: UInt32?
      for fd in directoryEntries(fdDir) {
        let n = readlink(fdDir + "/" + fd, &target, target.count - 1)
        guard n > 0 else { continue }
        let inode = target.withUnsafeBytes { ProcText.socketInode(fromLink: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        guard let inode, owners.byInode[inode] == nil else { continue }
        if process == nil {
          process = UInt32(owners.processes.count)
          owners.processes.append(Owner(pid: tgid, tid: tgid, comm: processName(pid) ?? "?", cgroupID: 0))
        }
        owners.byInode[inode] = process
      }
    }
    return owners
  }

  public func owner(ofInode inode: UInt32) -> Owner? {
    guard inode != 0, let process = byInode[inode] else { return nil }
    return processes[Int(process)]
  }

  static func processName(_ pid: String) -> String? {
    guard let text = try? readSmallFile("/proc/\(pid)/comm", limit: 64) else { return nil }
    return ProcText.comm(fromProcFile: text)
  }
}

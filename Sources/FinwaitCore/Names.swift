import CFinwaitEvent

/// The code path that sent our FIN, decided in the kernel at ESTABLISHED -> FIN_WAIT1.
public enum Path: String, Sendable, CaseIterable, Comparable {
  case shutdownWrite = "shutdown_wr"
  case shutdownReadWrite = "shutdown_rdwr"
  case close
  case exit
  case other
  /// FIN_WAIT1 began before finwait attached: neither owner nor path is known.
  case unknown

  public init(raw: UInt8) {
    switch UInt32(raw) {
    case FW_PATH_SHUTDOWN_WR.rawValue: self = .shutdownWrite
    case FW_PATH_SHUTDOWN_RDWR.rawValue: self = .shutdownReadWrite
    case FW_PATH_CLOSE.rawValue: self = .close
    case FW_PATH_EXIT.rawValue: self = .exit
    case FW_PATH_OTHER.rawValue: self = .other
    default: self = .unknown
    }
  }

  /// The kernel's `enum fw_path` value.
  var raw: UInt8 {
    let value = switch self {
    case .shutdownWrite: FW_PATH_SHUTDOWN_WR
    case .shutdownReadWrite: FW_PATH_SHUTDOWN_RDWR
    case .close: FW_PATH_CLOSE
    case .exit: FW_PATH_EXIT
    case .other: FW_PATH_OTHER
    case .unknown: FW_PATH_UNKNOWN
    }
    return UInt8(value.rawValue)
  }

  /// Declaration order: the order summaries list paths in.
  public static func < (a: Path, b: Path) -> Bool {
    (allCases.firstIndex(of: a) ?? 0) < (allCases.firstIndex(of: b) ?? 0)
  }
}

/// How FIN_WAIT2 ended, or why a record was written while it had not.
public enum End: String, Sendable, CaseIterable {
  /// The peer's FIN arrived: the connection moved on to TIME_WAIT.
  case peerFin = "peer_fin"
  /// An RST arrived, or the application aborted the connection.
  case reset
  /// An orphan was handed to a timewait socket: FIN_WAIT2 goes on where
  /// the tracepoint cannot see it, so its dwell is not known yet.
  case timewaitOrphan = "timewait_orphan"
  /// An orphan's fin timeout expired in timewait (TCP_LINGER2 or the
  /// namespace's tcp_fin_timeout): the kernel dropped the connection.
  case timeout
  /// Still in FIN_WAIT2 when finwait stopped.
  case tracerExit = "tracer_exit"
  /// The record of its end was lost (see the drop counters).
  case lost

  public init?(raw: UInt8) {
    switch UInt32(raw) {
    case FW_END_PEER_FIN.rawValue: self = .peerFin
    case FW_END_RESET.rawValue: self = .reset
    case FW_END_TIMEWAIT_ORPHAN.rawValue: self = .timewaitOrphan
    default: return nil
    }
  }
}

/// The syscall the owner was in when FIN_WAIT1 began.
public enum Syscall: String, Sendable {
  case shutdown, close, dup2, dup3
  case closeRange = "close_range"
  case execve, execveat, exit
  case exitGroup = "exit_group"
  case ioUringEnter = "io_uring_enter"
  case unknown

  public init(raw: UInt8) {
    switch UInt32(raw) {
    case FW_SYSCALL_SHUTDOWN.rawValue: self = .shutdown
    case FW_SYSCALL_CLOSE.rawValue: self = .close
    case FW_SYSCALL_DUP2.rawValue: self = .dup2
    case FW_SYSCALL_DUP3.rawValue: self = .dup3
    case FW_SYSCALL_CLOSE_RANGE.rawValue: self = .closeRange
    case FW_SYSCALL_EXECVE.rawValue: self = .execve
    case FW_SYSCALL_EXECVEAT.rawValue: self = .execveat
    case FW_SYSCALL_EXIT.rawValue: self = .exit
    case FW_SYSCALL_EXIT_GROUP.rawValue: self = .exitGroup
    case FW_SYSCALL_IO_URING_ENTER.rawValue: self = .ioUringEnter
    default: self = .unknown
    }
  }

  /// The kernel's `enum fw_syscall` value.
  var raw: UInt8 {
    let value = switch self {
    case .shutdown: FW_SYSCALL_SHUTDOWN
    case .close: FW_SYSCALL_CLOSE
    case .dup2: FW_SYSCALL_DUP2
    case .dup3: FW_SYSCALL_DUP3
    case .closeRange: FW_SYSCALL_CLOSE_RANGE
    case .execve: FW_SYSCALL_EXECVE
    case .execveat: FW_SYSCALL_EXECVEAT
    case .exit: FW_SYSCALL_EXIT
    case .exitGroup: FW_SYSCALL_EXIT_GROUP
    case .ioUringEnter: FW_SYSCALL_IO_URING_ENTER
    case .unknown: FW_SYSCALL_UNKNOWN
    }
    return UInt8(value.rawValue)
  }
}

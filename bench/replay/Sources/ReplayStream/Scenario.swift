import CFinwaitEvent

/// How one synthetic connection goes through FIN_WAIT2, with the records the
/// BPF program (bpf/finwait.bpf.c) sends for it. Weights are per mille.
enum Scenario: CaseIterable {
  /// shutdown(), remote peer answers with its FIN: ENTER, LEAVE peer_fin.
  case shutdownPeerFin
  /// shutdown() towards a peer on this node: the ENTER carries its
  /// CLOSE_WAIT, then its close (PEER_CLOSE) and LEAVE peer_fin.
  case shutdownLocalPeer
  /// RST within microseconds: ENTER and LEAVE often swap across CPUs.
  case attachedReset
  /// Attached in FIN_WAIT2, then closed by the app: handed to timewait,
  /// resolved by the local peer's close.
  case attachedThenClosed
  /// close()/dup2/close_range/execve: LEAVE timewait_orphan, PEER_CLOSE.
  case orphanClose
  /// The owner exited: LEAVE timewait_orphan, PEER_CLOSE.
  case orphanExit
  /// An orphan whose peer's FIN came before the timewait handover.
  case orphanPeerFin
  /// An orphan with linger2 < 0: reset instead of timewait.
  case orphanLingerReset
  /// FIN_WAIT1 not seen (no owner, path unknown): ENTER, LEAVE.
  case unseenFinWait1
  /// In FIN_WAIT2 before tracing began: a LEAVE without FIN_WAIT2_SEEN.
  case startedBeforeTracing
  /// The ENTER was lost (ring buffer full): a LEAVE alone.
  case enterLost
  /// Attached past the stuck threshold: reported by reportStuck, then LEAVE.
  case stuck

  /// Per mille; they add up to 1000.
  var weight: Int {
    switch self {
    case .shutdownPeerFin: 300
    case .shutdownLocalPeer: 100
    case .attachedReset: 60
    case .attachedThenClosed: 40
    case .orphanClose: 200
    case .orphanExit: 50
    case .orphanPeerFin: 60
    case .orphanLingerReset: 30
    case .unseenFinWait1: 80
    case .startedBeforeTracing: 30
    case .enterLost: 40
    case .stuck: 10
    }
  }

  static func pick(_ rng: inout SplitMix64) -> Scenario {
    var n = rng.below(1000)
    for s in allCases {
      if n < s.weight { return s }
      n -= s.weight
    }
    return .shutdownPeerFin
  }
}

/// The code path and syscall (x86-64 numbers) that sent the FIN.
struct FinSource {
  var path: fw_path
  var syscall: fw_syscall
  var number: Int32

  static func shutdown(_ rng: inout SplitMix64) -> FinSource {
    FinSource(path: rng.below(4) == 0 ? FW_PATH_SHUTDOWN_RDWR : FW_PATH_SHUTDOWN_WR,
              syscall: FW_SYSCALL_SHUTDOWN, number: 48)
  }

  static func lastReference(_ rng: inout SplitMix64) -> FinSource {
    switch rng.below(20) {
    case 0, 1: FinSource(path: FW_PATH_CLOSE, syscall: FW_SYSCALL_DUP2, number: 33)
    case 2, 3: FinSource(path: FW_PATH_CLOSE, syscall: FW_SYSCALL_CLOSE_RANGE, number: 436)
    case 4: FinSource(path: FW_PATH_CLOSE, syscall: FW_SYSCALL_EXECVE, number: 59)
    case 5: FinSource(path: FW_PATH_OTHER, syscall: FW_SYSCALL_IO_URING_ENTER, number: 426)
    default: FinSource(path: FW_PATH_CLOSE, syscall: FW_SYSCALL_CLOSE, number: 3)
    }
  }

  static let exit = FinSource(path: FW_PATH_EXIT, syscall: FW_SYSCALL_EXIT_GROUP, number: 231)
  static let unseen = FinSource(path: FW_PATH_UNKNOWN, syscall: FW_SYSCALL_UNKNOWN, number: -1)
}

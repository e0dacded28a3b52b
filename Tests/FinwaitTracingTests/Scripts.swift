import CFinwaitEvent
import Foundation
import FinwaitCore
import FinwaitTestSupport
@testable import FinwaitTracing

let ms: UInt64 = 1_000_000
let s: UInt64 = 1_000_000_000

/// A clock the script moves: every timed drain is one drain interval later.
final class ManualClock {
  var now: UInt64 = 1_000 * s
}

/// A node's sockets as the script sets them, per namespace.
final class ScriptedSockets: SocketTable {
  var ownNamespace: UInt32 = 1
  var sockets: [UInt32: [DiagSocket]] = [1: []]
  var ownerTable: [UInt32: Owner] = [:]
  var finTimeouts: [UInt32: UInt64] = [1: 60 * s]
  /// Runs at every dump: what happens on the node while it is read.
  var onDump: (UInt32) -> Void = { _ in }
  /// Namespaces listed but whose dump fails (not ours to enter).
  var unenterable: Set<UInt32> = []
  /// Sockets a dump skips though they exist (a bucket changed under it);
  /// an exact lookup still finds them.
  var skippedByDumps: Set<Endpoints> = []
  private(set) var dumps = 0

  func namespaces() -> [UInt32] { Set(sockets.keys).union(unenterable).sorted() }
  func finTimeout(of netns: UInt32) -> UInt64? { finTimeouts[netns] }

  func forEach(netns: UInt32, states: UInt32, _ body: (DiagSocket) -> Void) throws(FinwaitError) {
    dumps += 1
    onDump(netns)
    if unenterable.contains(netns) { throw .notPermitted("entering network namespace \(netns) needs CAP_SYS_ADMIN") }
    for socket in sockets[netns] ?? []
    where states & (1 << UInt32(socket.state.rawValue)) != 0 && !skippedByDumps.contains(socket.endpoints) {
      body(socket)
    }
  }

  func lookup(netns: UInt32, endpoints: Endpoints) throws(FinwaitError) -> DiagSocket? {
    sockets[netns]?.first { $0.endpoints == endpoints && !$0.isTimewait }
  }

  func release(_ netns: UInt32) {}
  func owners() -> SocketOwners { SocketOwners(ownerTable) }
}

/// Processes as the script sets them: their maps, memory and files, or gone.
final class ScriptedProcesses: ProcessImages {
  var maps: [UInt32: String] = [:]
  var files: [String: [UInt8]] = [:]
  /// finwait's own pid, whose maps lead to its own libraries.
  var ownProcess: UInt32 = 0
  private(set) var mapsRead: [UInt32] = []
  private(set) var pathsOpened: [String] = []

  func maps(of pid: UInt32) -> String? {
    mapsRead.append(pid)
    return maps[pid]
  }

  func memory(of pid: UInt32, at address: UInt64, count: Int) -> [UInt8]? { nil }

  func open(_ mappings: [Mapping], pid: UInt32) -> [UInt64: any MappedFile] {
    var opened: [UInt64: any MappedFile] = [:]
    for m in mappings { if let bytes = files[m.path] { opened[m.start] = Bytes(bytes) } }
    return opened
  }

  func open(path: String) -> OpenedFile? {
    pathsOpened.append(path)
    guard let bytes = files[path] else { return nil }
    return OpenedFile(file: Bytes(bytes), device: "fd:01", inode: UInt64(path.utf8.count))
  }

  final class Bytes: MappedFile {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    func read(at offset: UInt64, count: Int) -> [UInt8]? {
      guard offset + UInt64(count) <= UInt64(bytes.count) else { return nil }
      return Array(bytes[Int(offset)..<Int(offset) + count])
    }
  }
}

/// One run of the real tracing loop on scripted parts.
final class LoopRun {
  let clock = ManualClock()
  let source: ScriptedRecordSource
  let sockets = ScriptedSockets()
  let processes = ScriptedProcesses()
  let stdout = CapturedLines()
  let stderr = CapturedLines()
  var configuration = TracingLoop.Configuration()
  /// The loop stops once the script is played and this many more drains ran.
  var settleDrains = 0
  private var drainsAfterScript = 0
  var reconcile = true
  private(set) var loop: TracingLoop?

  init(_ batches: [[fw_event]]) {
    source = ScriptedRecordSource(batches: batches)
    configuration.finTimeoutSeconds = 60
    let clock = clock
    source.beforeDrain = { _ in clock.now += 100 * ms }
  }

  func run(_ mode: any TracingMode) throws {
    let reconciliation = reconcile ? Reconciliation(sockets: sockets) : nil
    reconciliation?.clock = { [clock] in clock.now }
    let source = source
    let env = LoopEnvironment(
      openSource: { _ in source }, reconciliation: reconciliation, processes: processes, workloads: nil,
      clock: { [clock] in clock.now }, wallClock: WallClock(offset: 0),
      stopRequested: { [unowned self] in
        guard source.isExhausted else { return false }
        drainsAfterScript += 1
        return drainsAfterScript > settleDrains
      },
      stdout: stdout, stderr: stderr)
    let loop = TracingLoop(configuration: configuration, environment: env, mode: mode)
    self.loop = loop
    try loop.run()
  }

  /// stdout as JSON objects.
  var json: [[String: Any]] {
    stdout.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
  }

  func records(_ type: String) -> [[String: Any]] { json.filter { $0["type"] as? String == type } }
}

func endpoints(local: UInt16 = 41234, remote: UInt16 = 8080) -> Endpoints {
  Endpoints(local: .v4(10, 0, 0, 1), localPort: local, remote: .v4(10, 0, 0, 2), remotePort: remote)
}

func jsonTrace() -> TraceMode {
  var options = TraceMode.Options()
  options.format = .json
  return TraceMode(options: options)
}

/// `finwait top` printing plain tables (no terminal) every `interval`.
func plainTop(interval: UInt64 = 1 * s) -> TopMode {
  var options = TopMode.Options()
  options.useTerminal = false
  options.interval = interval
  return TopMode(options: options)
}

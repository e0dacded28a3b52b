import FinwaitTestSupport
import Foundation
import XCTest

/// Runs the real finwait binary (which loads the real BPF program) and the
/// fwdrive scenario driver (real loopback sockets), and hands back what each
/// printed. Needs root; see `requireLive()`.
enum Live {
  static let environment = ProcessInfo.processInfo.environment
  static var finwait: String? { environment["FINWAIT_BIN"] }
  static var driver: String? { environment["FINWAIT_DRIVER"] }
  static var churn: String? { environment["FINWAIT_CHURN"] }
  static var stackDriver: String? { environment["FINWAIT_STACK_DRIVER"] }
  /// Runs finwait with the closer's registers read from the top of its
  /// kernel stack, the reader kernels before 5.15 need (bpf/regs.bpf.h).
  static let registersFromStack = ["env", "FINWAIT_REGS_FROM_STACK=1"]

  /// Skips loudly without root or the binaries, and fails instead when
  /// FINWAIT_REQUIRE_LIVE=1 (CI), so a skipped live test can never pass CI.
  static func requireLive(stackDriver needsStackDriver: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
    XUnitObserver.registerOnce()
    var missing: [String] = []
    if needsStackDriver, stackDriver.map({ FileManager.default.isExecutableFile(atPath: $0) }) != true {
      missing.append("FINWAIT_STACK_DRIVER (run through `make test`)")
    }
    if geteuid() != 0 { missing.append("root") }
    if finwait.map({ FileManager.default.isExecutableFile(atPath: $0) }) != true {
      missing.append("FINWAIT_BIN (run through `make test`)")
    }
    if driver.map({ FileManager.default.isExecutableFile(atPath: $0) }) != true {
      missing.append("FINWAIT_DRIVER (run through `make test`)")
    }
    guard !missing.isEmpty else { return }
    let message = "LIVE TEST SKIPPED: needs " + missing.joined(separator: ", ")
    FileHandle.standardError.write(Data("\n*** \(message) ***\n".utf8))
    if environment["FINWAIT_REQUIRE_LIVE"] == "1" {
      XCTFail(message + " (FINWAIT_REQUIRE_LIVE=1)", file: file, line: line)
      throw XCTSkip("failed: " + message)
    }
    throw XCTSkip(message)
  }

  /// A port per test, so leftover sockets of one never match another's filter.
  /// Below the ephemeral range (32768+): a listener there can collide with a
  /// client port still held by an earlier test's timewait socket.
  static func port(_ offset: Int) -> Int { 20_000 + offset * 7 + Int(getpid() % 5) * 1_000 }

  /// The running kernel's release, as uname gives it: the test's own truth,
  /// where finwait decides by probes.
  static var kernelRelease: String {
    var names = utsname()
    uname(&names)
    return withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
  }

  static func kernelAtLeast(_ major: Int, _ minor: Int) -> Bool {
    let parts = kernelRelease.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
    return parts.count == 2 && (parts[0], parts[1]) >= (major, minor)
  }

  /// This process's network namespace inode, as `--netns` takes it.
  static var ownNetns: String {
    let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")) ?? ""  // net:[4026531840]
    return String(link.dropFirst(5).dropLast())
  }
}

/// Collects a pipe's output on a thread of its own, with blocking reads until
/// EOF. (FileHandle.readabilityHandler sometimes stopped being called: a
/// finwait that had exited showed no EOF for 15 s, once with its output cut.)
final class Collector: @unchecked Sendable {
  private let lock = NSLock()
  private var data = Data()
  private var closed = false
  /// Keeps the read end open as long as the reader uses its descriptor.
  private let handle: FileHandle

  init(_ pipe: Pipe) {
    handle = pipe.fileHandleForReading
    let fd = handle.fileDescriptor
    let reader = Thread { [self] in
      var buffer = [UInt8](repeating: 0, count: 1 << 16)
      while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && (errno == EINTR || errno == EAGAIN) {
          if errno == EAGAIN { usleep(1_000) }  // a non-blocking descriptor: wait, not EOF
          continue
        }
        lock.lock()
        if n > 0 {
          data.append(contentsOf: buffer[..<n])
          lock.unlock()
          continue
        }
        closed = true
        lock.unlock()
        return
      }
    }
    reader.start()
  }

  var text: String {
    lock.lock()
    defer { lock.unlock() }
    return String(decoding: data, as: UTF8.self)
  }

  var isClosed: Bool {
    lock.lock()
    defer { lock.unlock() }
    return closed
  }

  var lines: [String] { text.split(separator: "\n").map(String.init) }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass.
@discardableResult
func waitUntil(_ seconds: Double, _ condition: () -> Bool) -> Bool {
  let deadline = Date().addingTimeInterval(seconds)
  while Date() < deadline {
    if condition() { return true }
    usleep(20_000)
  }
  return condition()
}

/// A started child process with its output collected.
class SpawnedProcess {
  let process = Process()
  let stdout: Collector
  let stderr: Collector

  init(_ command: [String]) throws {
    let out = Pipe()
    let err = Pipe()
    process.executableURL = URL(fileURLWithPath: command[0])
    process.arguments = Array(command.dropFirst())
    process.standardOutput = out
    process.standardError = err
    stdout = Collector(out)
    stderr = Collector(err)
    try process.run()
  }

  /// Whether both pipes reached EOF within `seconds`: output read after an
  /// exit without it can miss the last lines.
  func outputEnds(within seconds: Double = 15) -> Bool {
    waitUntil(seconds) { stdout.isClosed && stderr.isClosed }
  }

  /// A test that throws midway must not leave processes (or a tracer) behind.
  deinit {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }
}

/// A running finwait.
final class FinwaitProcess: SpawnedProcess {
  nonisolated(unsafe) private static var started = 0  // tests run one at a time

  /// Starts finwait and waits until it says it is ready (`--ready-fd`:
  /// attached, and what existed listed), not for any wording on stderr.
  /// `wrapper`: a command finwait runs under (e.g. setpriv to drop privileges).
  init(_ arguments: [String], wrapper: [String] = [], waitForAttach: Bool = true) throws {
    let command = wrapper + [Live.finwait ?? "finwait"] + arguments
    guard waitForAttach else {
      try super.init(command)
      return
    }
    // Foundation passes a child only fds 0-2: a shell opens fd 3 on a file
    // and execs finwait with it, so the pid stays finwait's.
    Self.started += 1
    let readyFile = NSTemporaryDirectory() + "finwait-ready-\(getpid())-\(Self.started)"
    FileManager.default.createFile(atPath: readyFile, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: readyFile) }
    try super.init(["/bin/sh", "-c", "exec \"$@\" 3>\"\(readyFile)\"", "sh"] + command + ["--ready-fd", "3"])
    let ready = waitUntil(30) {
      (try? String(contentsOfFile: readyFile, encoding: .utf8))?.contains("ready") == true || !process.isRunning
    }
    guard ready, process.isRunning else {
      throw LiveError("finwait did not get ready: \(stderr.text)")
    }
  }

  /// Sends `signal` and waits for exit; returns the exit status.
  @discardableResult
  // The 30 s bounds catch a hang; they are no timing claim: under QEMU's
  // emulation on a busy host a one-shot snapshot took over 10 s.
  func stop(_ signal: Int32 = SIGINT, within seconds: Double = 30) throws -> Int32 {
    if process.isRunning { kill(process.processIdentifier, signal) }
    return try waitForExit(seconds)
  }

  func waitForExit(_ seconds: Double = 30) throws -> Int32 {
    guard waitUntil(seconds, { !process.isRunning }) else {
      kill(process.processIdentifier, SIGKILL)
      throw LiveError("finwait did not exit within \(seconds)s")
    }
    // Parsing output that has not all arrived would fail far from the cause.
    guard outputEnds(within: 15) else {
      throw LiveError("finwait exited (status \(process.terminationStatus)) but its output did not reach EOF "
                      + "within 15 s: \(stdout.text.utf8.count) bytes of stdout read")
    }
    return process.terminationStatus
  }

  /// stdout parsed as JSON lines, after checking every line against
  /// docs/finwait.schema.json (for output that is complete: after stop).
  func validatedRecords() throws -> [[String: Any]] {
    let check = try schemaCheck(stdout.lines)
    guard check.status == 0 else { throw LiveError("output does not match the JSON schema: \(check.report)") }
    return try jsonRecords()
  }

  /// stdout parsed as JSON lines.
  func jsonRecords() throws -> [[String: Any]] {
    try stdout.lines.map { line in
      guard let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
        throw LiveError("not a JSON object: \(line)")
      }
      return o
    }
  }
}

/// What fwdrive says it did: the truth finwait's output is compared with.
struct Truth {
  var scenario: String
  var ownerPid: Int
  var ownerComm: String
  var clientPort: Int
  var holdMs: Int
}

final class DriverProcess: SpawnedProcess {
  /// `cgroup`: a cgroup v2 directory the driver moves itself into first.
  init(_ scenario: String, port: Int, holdMs: Int, family: Int = 4, clientPort: Int = 0,
       in namespace: TestNamespace? = nil, cgroup: String? = nil) throws {
    // The cgroup first: `ip netns exec` remounts /sys in a mount namespace of
    // its own, where the cgroup2 mount is gone. Both exec: the pid stays.
    var wrapper = cgroup.map { ["/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", $0] } ?? []
    if let namespace { wrapper += ["/usr/bin/env", "ip", "netns", "exec", namespace.name] }
    try super.init(wrapper + [Live.driver ?? "fwdrive", scenario, String(port), String(holdMs), String(family),
                              String(clientPort)])
  }

  /// Waits for the truth line (printed once the connection is set up).
  func truth() throws -> Truth {
    guard waitUntil(10, { stdout.text.contains("\n") }),
      let line = stdout.lines.first,
      let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
      let scenario = o["scenario"] as? String, let pid = o["owner_pid"] as? Int,
      let comm = o["owner_comm"] as? String, let port = o["client_port"] as? Int,
      let hold = o["hold_ms"] as? Int
    else { throw LiveError("fwdrive printed no truth: \(stdout.text) \(stderr.text)") }
    return Truth(scenario: scenario, ownerPid: pid, ownerComm: comm, clientPort: port, holdMs: hold)
  }

  func finish() throws {
    guard waitUntil(15, { !process.isRunning }) else {
      kill(process.processIdentifier, SIGKILL)
      throw LiveError("fwdrive did not finish")
    }
    guard process.terminationStatus == 0 else {
      throw LiveError("fwdrive failed (\(process.terminationStatus)): \(stderr.text)")
    }
  }
}

struct LiveError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// One scenario under a fresh finwait: start, drive, stop, parse.
struct ScenarioRun {
  var truth: Truth
  var records: [[String: Any]]
  var exitStatus: Int32
  var stderr: String

  /// fin_wait2 records of the driver's client connection.
  var connectionRecords: [[String: Any]] {
    records.filter { $0["type"] as? String == "fin_wait2" && $0["sport"] as? Int == truth.clientPort }
  }

  var summary: [String: Any]? { records.first { $0["type"] as? String == "summary" } }

  static func run(_ scenario: String, port: Int, holdMs: Int = 300, family: Int = 4,
                  extraArguments: [String] = [], finwaitWrapper: [String] = []) throws -> ScenarioRun {
    let finwait = try FinwaitProcess(["--json", "--port", String(port)] + extraArguments, wrapper: finwaitWrapper)
    let driver = try DriverProcess(scenario, port: port, holdMs: holdMs, family: family)
    let truth = try driver.truth()
    try driver.finish()
    // finwait drains, follows orphans and audits once more after the signal.
    let status = try finwait.stop()
    // Real output, every line, against docs/finwait.schema.json.
    let check = try schemaCheck(finwait.stdout.lines)
    guard check.status == 0 else { throw LiveError("output does not match the JSON schema: \(check.report)") }
    return ScenarioRun(truth: truth, records: try finwait.jsonRecords(), exitStatus: status,
                       stderr: finwait.stderr.text)
  }
}

extension ScenarioRun {
  /// The single fin_wait2 record of the driver's connection, owner checked;
  /// finwait exited 0, the passive side gave no record, nothing was dropped.
  func onlyConnectionRecord(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
    XCTAssertEqual(exitStatus, 0, stderr, file: file, line: line)
    XCTAssertEqual(connectionRecords.count, 1, "one record per connection: \(records)", file: file, line: line)
    let r = try XCTUnwrap(connectionRecords.first, "no record for port \(truth.clientPort): \(records)", file: file, line: line)
    XCTAssertEqual(r["pid"] as? Int, truth.ownerPid, "owner pid", file: file, line: line)
    XCTAssertEqual(r["comm"] as? String, truth.ownerComm, "owner comm", file: file, line: line)
    XCTAssertNotNil(r["cgroup_id"] as? Int, file: file, line: line)
    // The passive side (CLOSE_WAIT -> LAST_ACK) never yields a record.
    XCTAssertEqual(records.filter { $0["type"] as? String == "fin_wait2" }.count, 1,
                   "nothing but the active closer is reported", file: file, line: line)
    XCTAssertEqual(summary?["ringbuf_drops"] as? Int, 0, file: file, line: line)
    return r
  }
}

/// The driver holds FIN_WAIT2 for `holdMs` with nanosleep; the measured dwell
/// must lie within [holdMs - 50 ms, holdMs + 150 ms] (FIN_WAIT2 begins when
/// our FIN is ACKed, a few ms after shutdown()).
func assertDwell(_ ns: Any?, near holdMs: Int, file: StaticString = #filePath, line: UInt = #line) {
  guard let ns = ns as? Int else { return XCTFail("no dwell: \(String(describing: ns))", file: file, line: line) }
  let ms = ns / 1_000_000
  XCTAssertGreaterThanOrEqual(ms, holdMs - 50, "dwell \(ms) ms", file: file, line: line)
  XCTAssertLessThanOrEqual(ms, holdMs + 150, "dwell \(ms) ms", file: file, line: line)
}

/// A network namespace of the test's own (`ip netns add`), removed when released.
final class TestNamespace {
  let name: String
  let inode: Int

  init(_ suffix: String, finTimeoutSeconds: Int? = nil) throws {
    name = "fwtest-\(getpid())-\(suffix)"
    try command(["ip", "netns", "add", name])
    try command(["ip", "-n", name, "link", "set", "lo", "up"])
    if let finTimeoutSeconds {
      try command(["ip", "netns", "exec", name, "sh", "-c",
                   "echo \(finTimeoutSeconds) > /proc/sys/net/ipv4/tcp_fin_timeout"])
    }
    let attributes = try FileManager.default.attributesOfItem(atPath: "/run/netns/\(name)")
    inode = (attributes[.systemFileNumber] as? NSNumber)?.intValue ?? 0
  }

  deinit {
    try? command(["ip", "netns", "del", name])
  }
}

/// Runs a command to completion (bounded to 10 s); throws on failure.
func command(_ arguments: [String]) throws {
  let p = try SpawnedProcess(["/usr/bin/env"] + arguments)
  guard waitUntil(10, { !p.process.isRunning }) else { throw LiveError("\(arguments) did not finish") }
  guard p.process.terminationStatus == 0 else { throw LiveError("\(arguments) failed: \(p.stderr.text)") }
}

/// Local ports `ss` lists in FIN_WAIT2 (full sockets and timewait's), in
/// `namespace` or the test's own: what the kernel holds, read without finwait.
func finWait2Ports(in namespace: TestNamespace? = nil) -> Set<Int> {
  let prefix = namespace.map { ["ip", "netns", "exec", $0.name] } ?? []
  guard let ss = try? SpawnedProcess(["/usr/bin/env"] + prefix + ["ss", "-Htn", "state", "fin-wait-2"]),
        waitUntil(10, { !ss.process.isRunning && ss.stdout.isClosed }) else { return [] }
  return Set(ss.stdout.lines.compactMap { line in
    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    guard fields.count >= 3, let colon = fields[2].lastIndex(of: ":") else { return nil }
    return Int(fields[2][fields[2].index(after: colon)...])
  })
}

/// Waits until every one of `ports` is a local port in FIN_WAIT2.
@discardableResult
func waitForFinWait2(_ ports: [Int], in namespace: TestNamespace? = nil, _ seconds: Double = 30) -> Bool {
  waitUntil(seconds) { finWait2Ports(in: namespace).isSuperset(of: ports) }
}

extension FinwaitProcess {
  /// Waits until stdout has a JSON record matching `predicate`.
  func waitForRecord(_ seconds: Double, _ predicate: @escaping ([String: Any]) -> Bool) -> Bool {
    waitUntil(seconds) { ((try? self.jsonRecords()) ?? []).contains(where: predicate) }
  }
}

extension XCTestCase {
  /// `<cgroup2 mount>/<top>-<pid>/<pod><uid with _>.slice/<scope>`, as the
  /// kubelet's systemd driver names a pod and a runtime its container;
  /// removed when the test ends (its processes have exited by then).
  func makeCgroup(top: String, pod: String, uid: String, scope: String) throws -> String {
    let mount = try XCTUnwrap(cgroup2Mount(), "no cgroup2 mount in /proc/self/mountinfo")
    let top = mount + "/\(top)-\(getpid())"
    let pod = top + "/\(pod)\(uid.replacingOccurrences(of: "-", with: "_")).slice"
    let container = pod + "/" + scope
    try FileManager.default.createDirectory(atPath: container, withIntermediateDirectories: true)
    // Its processes were killed at the latest when the test's objects went: wait for them to leave.
    addTeardownBlock { for dir in [container, pod, top] { waitUntil(5) { rmdir(dir) == 0 || errno == ENOENT } } }
    return container
  }

  func cgroup2Mount() -> String? {
    guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") {
      let halves = line.components(separatedBy: " - ")
      guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
      let fields = halves[0].split(separator: " ")
      if fields.count > 4 { return String(fields[4]) }
    }
    return nil
  }
}

/// CLOCK_MONOTONIC in seconds: what the tests measure elapsed time with.
func monotonicSeconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

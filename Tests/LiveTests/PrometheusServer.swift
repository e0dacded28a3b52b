import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// A command run to its end, bounded in time.
struct FinishedCommand {
  var status: Int32
  var stdout: String
  var stderr: String
}

/// Runs `arguments` (an absolute path first) and waits at most `seconds`
/// for it to exit and for its output to reach EOF.
func runToEnd(_ arguments: [String], within seconds: Double = 10) throws -> FinishedCommand {
  let p = try SpawnedProcess(arguments)
  guard waitUntil(seconds, { !p.process.isRunning }) else {
    kill(p.process.processIdentifier, SIGKILL)
    throw LiveError("\(arguments) did not finish within \(seconds) s")
  }
  guard p.outputEnds(within: 5) else {
    throw LiveError("\(arguments) exited but its output did not reach EOF")
  }
  return FinishedCommand(status: p.process.terminationStatus, stdout: p.stdout.text, stderr: p.stderr.text)
}

/// One HTTP exchange, made with curl.
struct HTTPReply {
  var status: Int
  var contentType: String
  var body: String
}

/// `curl` with a 5 s limit. The status and content type go to curl's
/// stderr (`-w %{stderr}`), so the body on stdout is exactly what was sent.
func http(_ url: String, method: String = "GET", headers: [String] = [], data: String? = nil) throws -> HTTPReply {
  var arguments = ["/usr/bin/curl", "-sS", "-m", "5", "-X", method, "-w", "%{stderr}\n%{http_code}\n%{content_type}"]
  for header in headers { arguments += ["-H", header] }
  if let data { arguments += ["--data-binary", data] }
  let run = try runToEnd(arguments + [url])
  guard run.status == 0 else { throw LiveError("curl \(url) failed (\(run.status)): \(run.stderr)") }
  let tail = run.stderr.split(separator: "\n", omittingEmptySubsequences: false).suffix(2).map(String.init)
  guard tail.count == 2, let status = Int(tail[0]) else { throw LiveError("curl said: \(run.stderr)") }
  return HTTPReply(status: status, contentType: tail[1], body: run.stdout)
}

/// Debian's Prometheus server (`/usr/bin/prometheus`, package `prometheus`)
/// on loopback, scraping one target every second, with its storage in a
/// directory of its own; queried through its HTTP API.
final class PrometheusServer {
  static let binary = "/usr/bin/prometheus"
  static let promtool = "/usr/bin/promtool"
  let port: Int
  let directory: String
  private let server: SpawnedProcess

  /// Starts the server and waits (at most `seconds`) until it answers
  /// queries and has scraped `target` successfully once.
  init(port: Int, job: String, target: String, within seconds: Double = 60) throws {
    guard FileManager.default.isExecutableFile(atPath: Self.binary),
      FileManager.default.isExecutableFile(atPath: Self.promtool)
    else {
      throw LiveError("\(Self.binary) and \(Self.promtool) are missing: `make deps` installs Debian's prometheus")
    }
    self.port = port
    directory = NSTemporaryDirectory() + "finwait-prometheus-\(getpid())-\(port)"
    try? FileManager.default.removeItem(atPath: directory)
    try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
    let config = """
      global:
        scrape_interval: 1s
        scrape_timeout: 1s
        evaluation_interval: 1s
      scrape_configs:
        - job_name: \(job)
          static_configs:
            - targets: ['\(target)']

      """
    try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
    server = try SpawnedProcess([
      Self.binary, "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
      "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
    ])
    let up = waitUntil(seconds) { [self] in
      guard server.process.isRunning else { return true }
      return (try? vector("up{job=\"\(job)\"}").first?.value) == 1
    }
    guard up, server.process.isRunning else {
      let status = server.process.isRunning ? "running" : "exited \(server.process.terminationStatus)"
      stop()
      throw LiveError("prometheus (\(status)) did not scrape \(target) within \(seconds) s: \(server.stderr.text)")
    }
  }

  deinit { stop() }

  /// SIGTERM, then SIGKILL after 10 s; removes its directory.
  func stop() {
    if server.process.isRunning {
      kill(server.process.processIdentifier, SIGTERM)
      if !waitUntil(10, { !server.process.isRunning }) { kill(server.process.processIdentifier, SIGKILL) }
    }
    try? FileManager.default.removeItem(atPath: directory)
  }

  var log: String { server.stderr.text }

  /// `/api/v1/query` at the server's now: the result's `data`.
  func query(_ promql: String) throws -> [String: Any] {
    let run = try runToEnd([
      "/usr/bin/curl", "-sS", "-m", "5", "-G", "--data-urlencode", "query=\(promql)",
      "http://127.0.0.1:\(port)/api/v1/query",
    ])
    guard run.status == 0,
      let reply = try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any],
      reply["status"] as? String == "success", let data = reply["data"] as? [String: Any]
    else { throw LiveError("query \(promql) failed: \(run.stdout) \(run.stderr)") }
    return data
  }

  struct Sample {
    var labels: [String: String]
    var value: Double
  }

  struct Series {
    var labels: [String: String]
    /// (timestamp in seconds since 1970, value), oldest first.
    var samples: [(time: Double, value: Double)]
  }

  /// An instant vector's elements.
  func vector(_ promql: String) throws -> [Sample] {
    let data = try query(promql)
    guard data["resultType"] as? String == "vector", let result = data["result"] as? [[String: Any]] else {
      throw LiveError("\(promql) is not an instant vector: \(data)")
    }
    return try result.map { element in
      guard let labels = element["metric"] as? [String: String], let pair = element["value"] as? [Any],
        pair.count == 2, let text = pair[1] as? String, let value = Double(text)
      else { throw LiveError("unexpected element of \(promql): \(element)") }
      return Sample(labels: labels, value: value)
    }
  }

  /// A range selector's raw samples (`metric[30s]` at the server's now).
  func matrix(_ promql: String) throws -> [Series] {
    let data = try query(promql)
    guard data["resultType"] as? String == "matrix", let result = data["result"] as? [[String: Any]] else {
      throw LiveError("\(promql) is not a range vector: \(data)")
    }
    return try result.map { element in
      guard let labels = element["metric"] as? [String: String], let values = element["values"] as? [[Any]] else {
        throw LiveError("unexpected element of \(promql): \(element)")
      }
      let samples = try values.map { pair -> (time: Double, value: Double) in
        guard pair.count == 2, let time = (pair[0] as? NSNumber)?.doubleValue, let text = pair[1] as? String,
          let value = Double(text)
        else { throw LiveError("unexpected sample of \(promql): \(pair)") }
        return (time, value)
      }
      return Series(labels: labels, samples: samples)
    }
  }

  /// `promtool check metrics` on an exposition (its stdin).
  static func checkMetrics(_ exposition: String) throws -> FinishedCommand {
    let file = NSTemporaryDirectory() + "finwait-exposition-\(getpid()).txt"
    try exposition.write(toFile: file, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: file) }
    return try runToEnd(["/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool, file])
  }
}

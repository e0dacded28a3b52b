import Foundation
import XCTest

/// Writes the XCTest results as JUnit XML to $FINWAIT_XUNIT when the bundle
/// finishes, for CI to count (.ci/count-tests.py) instead of reading the
/// human log. Needed because SwiftPM writes `--xunit-output` for XCTest only
/// with `--parallel` (and marks skipped tests passed there), and the bare
/// .xctest binary that runs under QEMU has no such option at all.
///
/// Registered from `Live.requireLive()`, so only after the first live test's
/// setUp began: the results are therefore read at the end from the finished
/// root suite (every test case keeps its run), not gathered as tests start.
/// Failure messages are those reported once registered.
final class XUnitObserver: NSObject, XCTestObservation, @unchecked Sendable {
  private let path: String
  private let lock = NSLock()
  private var root: XCTestSuite?
  private var messages: [ObjectIdentifier: [String]] = [:]

  private init(path: String) { self.path = path }

  /// The observation center's reference may be weak; this one keeps it.
  private static let shared: XUnitObserver? = {
    guard let path = ProcessInfo.processInfo.environment["FINWAIT_XUNIT"], !path.isEmpty else { return nil }
    let observer = XUnitObserver(path: path)
    XCTestObservationCenter.shared.addTestObserver(observer)
    return observer
  }()

  /// Registers the observer the first time it is called, if FINWAIT_XUNIT is set.
  static func registerOnce() { _ = shared }

  func testCase(_ testCase: XCTestCase, didFailWithDescription description: String, inFile filePath: String?,
                atLine lineNumber: Int) {
    let location = filePath.map { "\($0):\(lineNumber): " } ?? ""
    lock.lock()
    messages[ObjectIdentifier(testCase), default: []].append(location + description)
    lock.unlock()
  }

  /// The last suite to finish is the root ("All tests" or "Selected tests").
  func testSuiteDidFinish(_ testSuite: XCTestSuite) {
    lock.lock()
    root = testSuite
    lock.unlock()
  }

  func testBundleDidFinish(_ testBundle: Bundle) {
    lock.lock()
    let xml = root.map(document) ?? Self.emptyDocument
    lock.unlock()
    do {
      try Data(xml.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      // No file at all: CI then fails on the missing results, as it should.
      FileHandle.standardError.write(Data("XUnitObserver: cannot write \(path): \(error)\n".utf8))
    }
  }

  private static let emptyDocument = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites tests=\"0\"/>\n"

  private struct Case {
    var className: String
    var name: String
    var time: Double
    var failures: [String]
    var skipped: String?
  }

  /// Test cases grouped by the suite that holds them (one per XCTestCase class).
  private func collect(_ suite: XCTestSuite, into groups: inout [(String, [Case])]) {
    var cases: [Case] = []
    for test in suite.tests {
      if let nested = test as? XCTestSuite {
        collect(nested, into: &groups)
        continue
      }
      guard let testCase = test as? XCTestCase else { continue }
      // "ScenarioTests.testX" -> class LiveTests.ScenarioTests, name testX.
      let className = String(reflecting: type(of: testCase))
      let name = testCase.name.split(separator: ".").last.map(String.init) ?? testCase.name
      guard let run = testCase.testRun else {
        cases.append(Case(className: className, name: name, time: 0, failures: [], skipped: "did not run"))
        continue
      }
      var failures = messages[ObjectIdentifier(testCase)] ?? []
      // Failed before the observer was registered: no message, still a failure.
      for _ in failures.count..<max(failures.count, run.totalFailureCount) {
        failures.append("failed (reported before the xunit observer was registered)")
      }
      cases.append(Case(className: className, name: name, time: run.testDuration, failures: failures,
                        skipped: run.hasBeenSkipped ? "skipped" : nil))
    }
    if !cases.isEmpty { groups.append((cases[0].className, cases)) }
  }

  private func document(_ root: XCTestSuite) -> String {
    var groups: [(String, [Case])] = []
    collect(root, into: &groups)
    func counts(_ cases: [Case]) -> String {
      let failed = cases.filter { !$0.failures.isEmpty }.count
      let skipped = cases.filter { $0.failures.isEmpty && $0.skipped != nil }.count
      let time = cases.reduce(0) { $0 + $1.time }
      return "tests=\"\(cases.count)\" failures=\"\(failed)\" errors=\"0\" skipped=\"\(skipped)\" time=\"\(time)\""
    }
    var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    out += "<testsuites name=\"\(escape(root.name))\" \(counts(groups.flatMap { $0.1 }))>\n"
    for (suiteName, cases) in groups {
      out += "  <testsuite name=\"\(escape(suiteName))\" \(counts(cases))>\n"
      for c in cases {
        out += "    <testcase classname=\"\(escape(c.className))\" name=\"\(escape(c.name))\" time=\"\(c.time)\""
        if c.failures.isEmpty && c.skipped == nil {
          out += "/>\n"
          continue
        }
        out += ">\n"
        for f in c.failures {
          let firstLine = f.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? f
          out += "      <failure message=\"\(escape(firstLine))\">\(escape(f))</failure>\n"
        }
        if let skipped = c.skipped { out += "      <skipped message=\"\(escape(skipped))\"/>\n" }
        out += "    </testcase>\n"
      }
      out += "  </testsuite>\n"
    }
    out += "</testsuites>\n"
    return out
  }

  /// Escaped for both text and attribute values; characters XML 1.0 cannot
  /// carry at all (most C0 controls, e.g. a terminal escape) become U+FFFD.
  private func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for scalar in s.unicodeScalars {
      switch scalar {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&apos;"
      case "\n": out += "&#10;"
      case "\r": out += "&#13;"
      case "\t": out += "&#9;"
      default:
        let v = scalar.value
        if v < 0x20 || v == 0xFFFE || v == 0xFFFF {
          out += "\u{FFFD}"
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out
  }
}

import Foundation

/// Checks JSON lines against docs/finwait.schema.json with
/// Tests/schema/validate.py (python3-jsonschema): its exit status and report.
/// FINWAIT_SCHEMA_CHECK=0 (the Linux 6.1 run under emulation) skips the check:
/// the format does not depend on the kernel.
/// `schema`: a path under docs/ (default: finwait.schema.json, the trace's lines).
public func schemaCheck(_ lines: [String], schema: String? = nil) throws -> (status: Int32, report: String) {
  if ProcessInfo.processInfo.environment["FINWAIT_SCHEMA_CHECK"] == "0" { return (0, "not checked (FINWAIT_SCHEMA_CHECK=0)") }
  let root = URL(fileURLWithPath: "\(#filePath)").deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  let process = Process()
  process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
  process.arguments = [root.appendingPathComponent("Tests/schema/validate.py").path]
    + (schema.map { ["--schema", root.appendingPathComponent("docs/" + $0).path] } ?? [])
  let input = Pipe()
  let output = Pipe()
  process.standardInput = input
  process.standardOutput = output
  process.standardError = output
  try process.run()
  input.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
  try input.fileHandleForWriting.close()
  let report = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
  process.waitUntilExit()
  return (process.terminationStatus, report)
}

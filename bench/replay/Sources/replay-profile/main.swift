// Replays the stream without the benchmark harness, for profilers
// (valgrind --tool=callgrind, perf) and to show what the stream holds.
//   replay-profile [passes] [--json]
import ReplayStream

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments.dropFirst()
let passes = arguments.first.flatMap { Int($0) } ?? 10
let formatsJSON = arguments.contains("--json")
let chunk = 1_000

let stream = SyntheticStream()
print("stream: \(stream.records.count) records, \(stream.connections) connections on \(stream.slots) sockets,",
      "period \(stream.period / 1_000_000_000) s, \(stream.outOfOrder) delivered after a later timestamp")
for (name, count) in stream.scenarioCounts.sorted(by: { $0.key < $1.key }) {
  print("  \(name): \(count)")
}

let replay = Replay(stream: stream, formatsJSON: formatsJSON)
replay.warmUp(passes: 2, chunk: chunk)
let emittedBefore = replay.consumer.emitted
let chunks = passes * replay.recordsPerPass / chunk
let clock = ContinuousClock()
var measured = Duration.zero
for _ in 0..<chunks {
  replay.prepareChunk(of: chunk)
  let start = clock.now
  replay.run(chunk: chunk)
  measured += clock.now - start
}
let events = chunks * chunk
let seconds = Double(measured.components.seconds) + Double(measured.components.attoseconds) / 1e18
print("measured: \(events) records in \(seconds) s: \(Int(Double(events) / seconds)) records/s,",
      "\(replay.consumer.emitted - emittedBefore) records emitted")
let counters = replay.consumer.tracker.counters
print("tracker: late enters \(counters.lateEnters), lost ends \(counters.lostEnds),",
      "attached in FIN_WAIT2 \(replay.consumer.tracker.attachedInFinWait2),",
      "orphans followed \(replay.consumer.tracker.orphans?.count ?? 0); undecodable \(replay.consumer.undecodable)")
let summary = replay.consumer.summary
print("ends:", summary.ends.sorted(by: { $0.key.rawValue < $1.key.rawValue }).map { "\($0.key.rawValue) \($0.value)" }
  .joined(separator: ", "), "; stuck \(summary.stuck)")
print("exact dwells by path:", summary.dwellByPath.keys.sorted().map { "\($0.rawValue) \(summary.dwellByPath[$0]?.total ?? 0)" }
  .joined(separator: ", "))
if formatsJSON { print("json bytes: \(replay.consumer.jsonBytes)") }

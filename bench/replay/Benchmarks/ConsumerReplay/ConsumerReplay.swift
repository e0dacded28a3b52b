import Benchmark
import ReplayStream

/// A replay owned by one benchmark; the harness runs setup, samples and
/// teardown one after the other on one thread, never concurrently.
final class ReplayBox: @unchecked Sendable {
  var replay: Replay?
}

func replayBenchmark(_ name: String, formatsJSON: Bool) {
  let box = ReplayBox()
  // One scaled iteration is one record: throughput reads as records per
  // second, and mallocs per sample divided by this are mallocs per record.
  let scaling = BenchmarkScalingFactor.kilo
  let chunk = scaling.rawValue
  Benchmark(
    name,
    configuration: .init(
      metrics: [.throughput, .wallClock, .mallocCountTotal],
      warmupIterations: 100, scalingFactor: scaling,
      maxDuration: .seconds(5), maxIterations: 20_000,
      setup: {
        let replay = Replay(stream: SyntheticStream(), formatsJSON: formatsJSON)
        replay.warmUp(passes: 2, chunk: chunk)
        box.replay = replay
      },
      teardown: { box.replay = nil })
  ) { benchmark in
    guard let replay = box.replay else { return }
    replay.prepareChunk(of: chunk)
    benchmark.startMeasurement()
    replay.run(chunk: chunk)
  }
}

let benchmarks: @Sendable () -> Void = {
  replayBenchmark("consume hist: loop intake + hist mode", formatsJSON: false)
  replayBenchmark("consume trace json: loop intake + summary + JSON line", formatsJSON: true)
}

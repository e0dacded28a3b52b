// swift-tools-version: 6.1
// The consumer replay benchmark (issue 5). A package of its own so that the
// main package, built by CI on every run, never resolves package-benchmark.
import PackageDescription

let package = Package(
  name: "finwait-replay",
  platforms: [.macOS(.v13)],
  dependencies: [
    // Named, not identified by the checkout folder name, which varies.
    .package(name: "finwait", path: "../.."),
    .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    // The synthetic stream and the consumer loop, shared by the benchmark and
    // the profiling driver so both measure the same code.
    .target(
      name: "ReplayStream",
      dependencies: [
        .product(name: "FinwaitCore", package: "finwait"),
        .product(name: "FinwaitTracing", package: "finwait"),
        .product(name: "CFinwaitEvent", package: "finwait"),
      ]
    ),
    // Runs the replay without the benchmark harness, for valgrind and perf.
    .executableTarget(name: "replay-profile", dependencies: ["ReplayStream"]),
    .executableTarget(
      name: "ConsumerReplay",
      dependencies: ["ReplayStream", .product(name: "Benchmark", package: "benchmark")],
      path: "Benchmarks/ConsumerReplay",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    ),
  ]
)

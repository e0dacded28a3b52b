// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "finwait",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "finwait", targets: ["finwait"]),
    // For bench/replay, a separate package that must not add its dependencies here.
    .library(name: "FinwaitCore", targets: ["FinwaitCore"]),
    .library(name: "FinwaitTracing", targets: ["FinwaitTracing"]),
    .library(name: "CFinwaitEvent", targets: ["CFinwaitEvent"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    // `finwait serve`: the HTTP listener, the metric registry and exposition, log lines.
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
  ],
  targets: [
    // The ring-buffer record, shared with bpf/finwait.bpf.c.
    .target(name: "CFinwaitEvent"),
    // libbpf from the system (Debian: libbpf-dev).
    .systemLibrary(
      name: "CLibbpf",
      pkgConfig: "libbpf",
      providers: [.apt(["libbpf-dev"])]
    ),
    // The BPF object, embedded through the bpftool skeleton the Makefile
    // generates, and the libbpf lifecycle around it.
    .target(name: "CFinwaitBPF", dependencies: ["CLibbpf", "CFinwaitEvent", "CFinwaitDiag"]),
    // Signals, stdio, the terminal, readiness notifications: no BPF here.
    .target(name: "CFinwaitSystem"),
    // sock_diag netlink sockets inside other network namespaces.
    .target(name: "CFinwaitDiag", linkerSettings: [.linkedLibrary("pthread")]),
    // Cgroup ids back to paths (open_by_handle_at).
    .target(name: "CFinwaitCgroup"),
    // Domain logic: pure, no I/O, testable without privileges.
    .target(
      name: "FinwaitCore",
      dependencies: ["CFinwaitEvent", .product(name: "Histogram", package: "hdrhistogram-swift")]
    ),
    // The I/O edge: loading and polling the tracer, /proc and /sys reads.
    .target(
      name: "FinwaitTracing",
      dependencies: [
        "FinwaitCore", "CFinwaitBPF", "CFinwaitSystem", "CFinwaitDiag", "CFinwaitCgroup",
        .product(name: "SystemPackage", package: "swift-system"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(
      name: "finwait",
      dependencies: [
        "FinwaitTracing", "FinwaitCore",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    // Synthetic kernel records for the unit tests of both libraries.
    .target(name: "FinwaitTestSupport", dependencies: ["CFinwaitEvent"], path: "Tests/FinwaitTestSupport"),
    .testTarget(name: "FinwaitCoreTests", dependencies: ["FinwaitCore", "CFinwaitEvent", "FinwaitTestSupport"]),
    // The tracing loop and its modes through seams: scripted records, sockets and processes, no root.
    .testTarget(
      name: "FinwaitTracingTests",
      dependencies: [
        "FinwaitTracing", "FinwaitCore", "FinwaitTestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    // Property-based tests (Swift Testing) of every parser of outside text and bytes.
    .testTarget(
      name: "ParserPropertyTests",
      dependencies: [
        "FinwaitCore", "FinwaitTracing", "CFinwaitEvent",
        .product(name: "PropertyBased", package: "swift-property-based"),
      ]
    ),
    .testTarget(name: "LiveTests", dependencies: ["FinwaitCore", "FinwaitTracing", "CFinwaitEvent", "FinwaitTestSupport"]),
  ]
)

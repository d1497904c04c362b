// swift-tools-version:6.1
// Flashback Collector: the storage side of the Flashback control plane and its metrics store.
// The target map and the way of a sample are described in docs/architecture.md.

import Foundation
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "flashback-collector",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "flashback-collector", targets: ["flashback-collector"]),
        .library(name: "RocksDB", targets: ["RocksDB"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    ],
    targets: [
        // MARK: Storage engine
        .systemLibrary(
            name: "CRocksDB",
            pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]
        ),
        .target(
            name: "RocksDB",
            dependencies: ["CRocksDB"],
            swiftSettings: strict
        ),

        // MARK: Domain
        .target(
            name: "CollectorModel",
            swiftSettings: strict
        ),
        .target(
            name: "Ingest",
            dependencies: ["CollectorModel"],
            swiftSettings: strict
        ),
        // The Flashback API's request bodies, their bounds and the SigV4 request parsing: pure,
        // no HTTP, so the fuzz build instruments only this and the model.
        .target(
            name: "FlashbackWire",
            dependencies: ["CollectorModel"],
            swiftSettings: strict
        ),
        .target(
            name: "TimeSeries",
            dependencies: ["RocksDB", "CollectorModel"],
            swiftSettings: strict
        ),
        // The way in (VictoriaMetrics' vminsert): stream layer, rows → series batches, the one
        // ingest writer, the UDP listener, flush and retention services, ingest metrics. The pure
        // rows → series-batch rules and the series memo are IngestMapping, so that the fuzz
        // build does not instrument SwiftNIO and BoringSSL.
        .target(
            name: "IngestMapping",
            dependencies: ["CollectorModel", "Ingest", "TimeSeries"],
            swiftSettings: strict
        ),
        .target(
            name: "Ingestion",
            dependencies: [
                "CollectorModel",
                "CSystemMemory",
                "Ingest",
                "IngestMapping",
                "TimeSeries",
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CollectorStore",
            dependencies: [
                "RocksDB",
                "CollectorModel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Bridge nodes, organization keys, signatures, the replay guard and node tokens,
        // behind RegistryStore (RocksDB embedded).
        .target(
            name: "Registry",
            dependencies: [
                "RocksDB",
                "CollectorModel",
                "CollectorStore",
                "FlashbackWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Buckets, repositories, repo keys, the SigV4 authorizer and the provider validators,
        // behind CatalogStore (RocksDB embedded).
        .target(
            name: "Catalog",
            dependencies: [
                "RocksDB",
                "CollectorModel",
                "CollectorStore",
                "FlashbackWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // Cluster mode's control plane: the Registry and Catalog stores on PostgreSQL, the schema
        // migrations and the change notifications that keep every replica's cache fresh.
        .target(
            name: "ControlPlanePostgres",
            dependencies: [
                "CollectorModel",
                "Registry",
                "Catalog",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Remote write: the outbox's senders, Prometheus naming, protobuf (generated code committed,
        // scripts/generate-protos.sh) and Debian's libsnappy.
        .systemLibrary(
            name: "CSnappy",
            pkgConfig: "snappy",
            providers: [.apt(["libsnappy-dev"])]
        ),
        .target(
            name: "RemoteWrite",
            dependencies: [
                "CSnappy",
                "CollectorModel",
                "TimeSeries",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Proto/remote.proto"],
            swiftSettings: strict
        ),
        // Cluster mode's stats source: the rollups of a Prometheus query API (vmselect, Mimir,
        // Thanos Query, Prometheus) over what remote write forwarded.
        .target(
            name: "ClusterStats",
            dependencies: [
                "CollectorModel",
                "RemoteWrite",
                "RocksDB",
                "Stats",
                "TimeSeries",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CollectorAuth",
            dependencies: [
                "CollectorModel",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),

        .target(
            name: "Exposition",
            dependencies: [.product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        .target(
            name: "Stats",
            dependencies: ["Catalog", "CollectorModel", "Exposition", "Registry", "TimeSeries"],
            swiftSettings: strict
        ),

        // MARK: Service
        .target(name: "CSystemMemory"),
        .target(
            name: "CollectorHTTP",
            dependencies: [
                "CSystemMemory",
                "CollectorModel",
                "CollectorStore",
                "CollectorAuth",
                "FlashbackWire",
                "Catalog",
                "Registry",
                "Ingest",
                "IngestMapping",
                "Ingestion",
                "TimeSeries",
                "Stats",
                "Exposition",
                "RocksDB",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "flashback-collector",
            dependencies: [
                "CollectorModel",
                "CollectorStore",
                "CollectorAuth",
                "CollectorHTTP",
                "CSystemMemory",
                "Catalog",
                "Registry",
                "ControlPlanePostgres",
                "Ingest",
                "Ingestion",
                "RemoteWrite",
                "ClusterStats",
                "Stats",
                "Exposition",
                "TimeSeries",
                "RocksDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // MARK: Fuzzing (docs/fuzzing.md): scripts/fuzz.sh builds flashback-fuzz with libFuzzer
        .target(
            name: "FuzzTargets",
            dependencies: ["CollectorModel", "FlashbackWire", "Ingest", "IngestMapping", "TimeSeries"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "flashback-fuzz",
            dependencies: ["FuzzTargets"],
            swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]
        ),

        // MARK: Tests
        .target(
            name: "CollectorTesting",
            dependencies: [
                "RocksDB",
                "Registry",
                "Catalog",
                "ControlPlanePostgres",
                "CollectorAuth",
                "CollectorModel",
                "CollectorStore",
                "RemoteWrite",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RocksDBTests",
            dependencies: ["RocksDB", "CollectorTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IngestTests",
            dependencies: ["Ingest"],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "FuzzTargetTests",
            dependencies: ["FuzzTargets", "FlashbackWire", "CollectorModel", "Ingest"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TimeSeriesTests",
            dependencies: ["TimeSeries", "RocksDB", "CollectorTesting"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RegistryTests",
            dependencies: [
                "Registry",
                "CollectorModel",
                "FlashbackWire",
                "CollectorStore",
                "CollectorTesting",
                "ControlPlanePostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RemoteWriteTests",
            dependencies: [
                "RemoteWrite",
                "ClusterStats",
                "Stats",
                "TimeSeries",
                "RocksDB",
                "CollectorModel",
                "CollectorTesting",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CatalogTests",
            dependencies: [
                "Catalog",
                "CollectorModel",
                "FlashbackWire",
                "CollectorStore",
                "CollectorTesting",
                "ControlPlanePostgres",
                "RocksDB",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CollectorTests",
            dependencies: [
                "CollectorModel",
                "CollectorStore",
                "CollectorAuth",
                "CollectorHTTP",
                "CollectorTesting",
                "Ingestion",
                "Catalog",
                "Registry",
                "Stats",
                "Exposition",
                "TimeSeries",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "RocksDB",
            ],
            resources: [.copy("Fixtures")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "flashback-collector",
                "CollectorTesting",
                "CollectorAuth",
                "CollectorModel",
                "CollectorStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)

// MARK: Benchmarks (Benchmarks/README.md)
// package-benchmark and the four benchmark executables join the package graph only when
// FLASHBACK_BENCHMARKS is set, so ordinary builds and CI neither resolve nor compile them:
//   FLASHBACK_BENCHMARKS=1 swift package --disable-sandbox benchmark
if ProcessInfo.processInfo.environment["FLASHBACK_BENCHMARKS"] != nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets += [
        .executableTarget(
            name: "RocksDBBenchmarks",
            dependencies: [
                "RocksDB",
                "CollectorTesting",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/RocksDBBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "TimeSeriesBenchmarks",
            dependencies: [
                "TimeSeries",
                "Ingest",
                "Ingestion",
                "RocksDB",
                .product(name: "Metrics", package: "swift-metrics"),
                "CollectorTesting",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/TimeSeriesBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "StatsBenchmarks",
            dependencies: [
                "CollectorAuth",
                "CollectorHTTP",
                "CollectorModel",
                "CollectorStore",
                "CollectorTesting",
                "Catalog",
                "Registry",
                "TimeSeries",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/StatsBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "ControlPlaneBenchmarks",
            dependencies: [
                "Catalog",
                "CollectorModel",
                "CollectorStore",
                "CollectorTesting",
                "ControlPlanePostgres",
                "FlashbackWire",
                "Registry",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ControlPlaneBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "IngestBenchmarks",
            dependencies: [
                "Ingest",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/IngestBenchmarks",
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
}

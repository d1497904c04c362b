import Benchmark
import Catalog
import CollectorAuth
import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import _CryptoExtras
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Registry
import TimeSeries

/// The stats API over HTTP (in-process router: routing, scoping, rollup reads and JSON) with the
/// issue's fleet: 1,000 registered nodes × 10 buckets each (1,000 buckets, each served by 10
/// nodes: 10,000 node×bucket pairs) and one day of minute status reports (status and latency,
/// 14.4 M reports) and traffic reports of every pair every 5 minutes (2.9 M), flushed into
/// blocks. Measured: `/stats/nodes/minute` for all pairs and for one bucket, `POST
/// /bucket/{id}/stats` for one day, `/stats/nodes/daily` for one bucket, `/bucket/stats` for all
/// buckets and for one, and the Prometheus export `/metrics` with all 10,000 pairs.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 1000)

    Benchmark("GET /stats/nodes/minute, all 10,000 pairs") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/stats/nodes/minute")
    }
    Benchmark("GET /stats/nodes/minute?bucketId=… (one bucket, 10 pairs)") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/stats/nodes/minute?bucketId=bucket-42")
    }
    Benchmark("POST /bucket/{id}/stats, one day (10 nodes)") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/bucket/bucket-42/stats", body: #"{"day":"\#(StatsFleet.dayText)"}"#)
    }
    Benchmark("GET /metrics, 10,000 node×bucket pairs + self metrics", configuration: .init(maxDuration: .seconds(60), maxIterations: 5000)) { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/metrics")
    }
    Benchmark("GET /stats/nodes/daily?bucketId=… (one bucket, 7 days)") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/stats/nodes/daily?bucketId=bucket-42")
    }
    Benchmark("GET /bucket/stats, all 1,000 buckets (10,000 traffic series)") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/bucket/stats")
    }
    Benchmark("GET /bucket/stats?bucketId=… (one bucket, 10 traffic series)") { benchmark in
        try await FleetCache.shared.fleet().measure(benchmark, uri: "/bucket/stats?bucketId=bucket-42")
    }
}

/// The fleet, built once per benchmark process.
final class StatsFleet: Sendable {
    /// 2026-03-10T23:59:00Z: the data covers the day up to this minute.
    static let now = Date(timeIntervalSince1970: 1_773_187_140)
    static let dayText = "2026-03-10T00:00:00.000Z"
    static let nodes = 1000
    static let bucketsPerNode = 10
    static let buckets = 1000

    let directory: TemporaryDirectory
    let storage: CollectorStorage
    let dependencies: CollectorApplication.Dependencies
    let authorization: String

    init(tokens: TokenAuthority, token: String) throws {
        directory = TemporaryDirectory(prefix: "bench-stats")
        let logger = Logger(label: "bench")
        // The fleet's day is a fixed date in the past: retention wide enough to keep it when the
        // setup compacts (the default 35 days would drop every block).
        storage = try CollectorStorage.open(dataDirectory: directory.appending("data"),
                                            extraFamilies: TimeSeriesStore.columnFamilies(minuteRetention: 3650 * 86_400), logger: logger)
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let clock: @Sendable () -> Date = { StatsFleet.now }
        let registry = try NodeRegistry(storage: storage, secrets: secrets, clock: { StatsFleet.now.addingTimeInterval(-2 * 86_400) }, logger: logger)
        let catalog = try StorageCatalog(storage: storage, secrets: secrets, clock: clock, logger: logger)
        let store = try TimeSeriesStore(database: storage.database)
        authorization = "Bearer \(token)"

        // Nodes, registered with real signatures two days before.
        let (_, pem) = try registry.createKey(organization: "bench")
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        let registeredAt = Int64(Self.now.timeIntervalSince1970) - 2 * 86_400
        var nodeIDs: [String] = []
        for index in 0..<Self.nodes {
            let ip = "10.0.\(index / 256).\(index % 256)"
            let text = "\(ip)|eu-central-1|\(registeredAt)"
            let signature = try key.signature(for: Data(text.utf8), padding: .insecurePKCS1v1_5).rawRepresentation.base64EncodedString()
            let message = SignedNodeMessage(ip: ip, region: "eu-central-1", timestamp: NodeTimestamp(seconds: registeredAt), signature: signature, organization: "bench")
            let (node, _) = try registry.register(NodeRegistration(message: message, provider: "AWS", version: "1.0.0", status: "running", nodeServices: 1,
                                                                   url: "https://s3-eu-central-1-aws.flashback.tech"))
            nodeIDs.append(node.id)
        }
        // One day of minute reports: node n serves buckets (n + 100 k) mod 1000, k < 10.
        let dayStart = Int64(Self.now.timeIntervalSince1970) / 86_400 * 86_400
        for minute in 0..<1440 {
            let stamp = (dayStart + Int64(minute) * 60) * 1_000_000_000
            var points: [SeriesPoint] = []
            points.reserveCapacity(Self.nodes * Self.bucketsPerNode)
            for node in 0..<Self.nodes {
                for k in 0..<Self.bucketsPerNode {
                    let bucket = (node + 100 * k) % Self.buckets
                    let online = (node * 31 + k * 7 + minute) % 97 != 0
                    points.append(SeriesPoint(organization: "bench", measurement: "node_status",
                                              tags: [(key: "bucket", value: "bucket-\(bucket)"), (key: "node", value: nodeIDs[node])],
                                              fields: [(name: "status", value: online ? 1 : 0), (name: "latency_ms", value: Double(20 + (node + minute) % 80))],
                                              timestamp: stamp))
                }
            }
            if minute % 5 == 0 {
                for node in 0..<Self.nodes {
                    for k in 0..<Self.bucketsPerNode {
                        let bucket = (node + 100 * k) % Self.buckets
                        points.append(SeriesPoint(organization: "bench", measurement: "bucket_traffic",
                                                  tags: [(key: "bucket", value: "bucket-\(bucket)"), (key: "node", value: nodeIDs[node])],
                                                  fields: [(name: "dwl_bytes", value: Double(1000 + (node * 7 + minute) % 5000)),
                                                           (name: "requests", value: Double(1 + (node + k) % 9)),
                                                           (name: "upl_bytes", value: Double(500 + (bucket * 3 + minute) % 2000))],
                                                  timestamp: stamp))
                    }
                }
            }
            _ = try store.write(points, now: Self.now, sync: false)
            try store.flushIfDue()
        }
        try store.flush()
        // Compact now, so no background compaction of the setup's writes competes with the
        // measured requests (a running collector spreads these over the day).
        try store.enforceRetention()
        // Every minute of the day is there (a compaction must not have dropped any of it).
        for measurement in ["node_status", "bucket_traffic"] {
            let series = store.index.series(organization: "bench", measurement: measurement)
            guard series.count == Self.nodes * Self.bucketsPerNode, let first = series.first,
                  let field = store.index.existingFieldID(measurement == "node_status" ? "status" : "upl_bytes") else {
                throw BenchmarkFailure(description: "setup: \(series.count) \(measurement) series")
            }
            let day = try store.rollups(series: first.id, field: field, start: dayStart, end: dayStart + 86_400, perDay: true)
            let expected: UInt64 = measurement == "node_status" ? 1440 : 288
            guard day.first?.rollup.count == expected else {
                throw BenchmarkFailure(description: "setup: \(measurement) day holds \(day.first?.rollup.count ?? 0) samples, not \(expected)")
            }
        }
        dependencies = CollectorApplication.Dependencies(
            storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: store,
            readiness: ServiceReadiness(), version: "bench", clock: clock)
    }

    /// Runs `benchmark`'s iterations, one request each, and checks the answer.
    func measure(_ benchmark: Benchmark, uri: String, body: String? = nil) async throws {
        let router = CollectorApplication.makeRouter(dependencies)
        let authorization = self.authorization
        // Used from the test client's task only, one iteration after the other.
        let measured = Unchecked(benchmark)
        try await Application(router: router).test(.router) { client in
            // Warm-up (fills the latest-sample cache, as a running service has).
            let first = try await client.execute(uri: uri, method: body == nil ? .get : .post, headers: [.authorization: authorization],
                                                 body: body.map { ByteBuffer(string: $0) })
            guard first.status == .ok, first.body.readableBytes > 100 else {
                throw BenchmarkFailure(description: "\(uri): \(first.status) \(String(buffer: first.body).prefix(200))")
            }
            let benchmark = measured.value
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                let response = try await client.execute(uri: uri, method: body == nil ? .get : .post, headers: [.authorization: authorization],
                                                        body: body.map { ByteBuffer(string: $0) })
                blackHole(response.body.readableBytes)
            }
            benchmark.stopMeasurement()
        }
    }
}

struct Unchecked<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    var description: String
}

/// Builds the fleet once per benchmark process.
actor FleetCache {
    static let shared = FleetCache()
    private var built: StatsFleet?

    func fleet() async throws -> StatsFleet {
        if let built { return built }
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: Array("bench-secret-0123456789abcdef0123456789".utf8)))
        let token = try await tokens.mint(for: CallerIdentity(organization: "bench", user: "u", role: .user), lifetime: 86_400 * 365, now: StatsFleet.now)
        let made = try StatsFleet(tokens: tokens, token: token)
        built = made
        return made
    }
}

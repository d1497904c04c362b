import Benchmark
import CollectorTesting
import CoreMetrics
import Foundation
import Ingest
import Ingestion
import RocksDB
import TimeSeries

/// The write path below HTTP, as the collector runs it (`IngestWriter.writeLines`): parse a
/// 10,000-line body of the load driver's shape with the shared series-section cache, map it to a
/// store batch (series ids memoized in the sections), log and buffer it (`TimeSeriesStore.write`, WAL on, no fsync), and flush the
/// buffer into series-hour blocks whenever it is due (every 512 Ki samples, ~13 bodies), so the
/// flush cost is included. Then the read side: the rollups of one series over one day.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(8),
        maxIterations: 400)

    let regions = ["us-east-1", "us-west-2", "eu-central-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1", "af-south-1"]

    Benchmark("Write path: parse + store + flush, 10,000 lines x 4 fields (10,000 series)") { benchmark in
        let directory = TemporaryDirectory(prefix: "bench-ts")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        let store = try TimeSeriesStore(database: db)
        let writer = IngestWriter(store: store, nodes: NoNodes(), metrics: IngestMetrics(factory: NOOPMetricsHandler.instance))
        let now = Date()
        // Bodies prepared up front: one round of all 10,000 series each, a minute apart.
        let bodies: [[UInt8]] = (0..<120).map { round in
            let stamp = (Int64(now.timeIntervalSince1970) - 40 * 3600 + Int64(round) * 60) * 1_000_000_000
            var text = ""
            text.reserveCapacity(10_000 * 140)
            for index in 0..<10_000 {
                let node = index / 10
                text += "node_bucket,node=node-\(node),bucket=bkt-\(index % 10),region=\(regions[node % 8]) latency_ms=\(Double(index % 97) + 0.5),online=1i,upl_bytes=\(index * 131 + round)i,dwl_bytes=\(index * 17)i \(stamp)\n"
            }
            return Array(text.utf8)
        }
        func ingest(_ body: [UInt8]) throws -> Int {
            let outcome = try body.withUnsafeBytes { try writer.writeLines($0, precision: .nanoseconds, writer: .organization("bench")) }
            try store.flushIfDue()
            return outcome.stored.stored
        }
        // Register the series before measuring (steady state: series already known).
        _ = try ingest(bodies[0])
        var next = 1
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try ingest(bodies[next % bodies.count]))
            next += 1
        }
        benchmark.stopMeasurement()
        db.close()
    }

    Benchmark("Rollups of one series-day: 1,440 minutes x 4 fields, per minute and per day") { benchmark in
        let directory = TemporaryDirectory(prefix: "bench-read")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        let store = try TimeSeriesStore(database: db)
        let now = Date()
        let dayStart = (Int64(now.timeIntervalSince1970) / 86_400 - 1) * 86_400
        var points: [SeriesPoint] = []
        for minute in 0..<1440 {
            let fields: [(name: String, value: Double)] = [
                (name: "latency_ms", value: Double(minute % 97)), (name: "online", value: 1),
                (name: "upl_bytes", value: Double(minute * 131)), (name: "dwl_bytes", value: Double(minute * 17))]
            let timestamp: Int64 = (dayStart + Int64(minute) * 60) * 1_000_000_000
            points.append(SeriesPoint(organization: "bench", measurement: "node_bucket", tags: [(key: "node", value: "n1")],
                                      fields: fields, timestamp: timestamp))
        }
        _ = try store.write(points, now: now, sync: false)
        try store.flush()
        try db.flush()
        let id = try require(store.index.series(organization: "bench", measurement: "node_bucket").first?.id)
        let field = try require(store.index.existingFieldID("latency_ms"))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let minutes = try store.rollups(series: id, field: field, start: dayStart, end: dayStart + 86_400, perDay: false)
            let day = try store.rollups(series: id, field: field, start: dayStart, end: dayStart + 86_400, perDay: true)
            blackHole(minutes.count + day.count)
        }
        benchmark.stopMeasurement()
        db.close()
    }
}

struct MissingValue: Error {}

/// `#require` for benchmarks.
func require<T>(_ value: T?) throws -> T {
    guard let value else { throw MissingValue() }
    return value
}

/// Organization writes only: no node is ever looked up or marked seen.
struct NoNodes: IngestNodeDirectory {
    func datagramSigner(nodeID: String) -> DatagramSigner? { nil }
    func markSeen(nodeID: String, latencyMs: Double?) {}
}

import Benchmark
import CollectorTesting
import Foundation
import Ingest
import RocksDB
import TimeSeries

/// The write path below HTTP: parse a 10,000-line body of the load driver's shape, map it to
/// series points, group by (series, minute) and commit one WriteBatch (WAL on, sync off).
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(8),
        maxIterations: 400)

    let regions = ["us-east-1", "us-west-2", "eu-central-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1", "af-south-1"]

    Benchmark("Write path: parse + store 10,000 lines x 4 fields (10,000 series)") { benchmark in
        let directory = TemporaryDirectory(prefix: "bench-ts")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        let store = try TimeSeriesStore(database: db)
        let now = Date()
        // Bodies prepared up front: one round of all 10,000 series each, 1 s apart.
        let bodies: [[UInt8]] = (0..<60).map { round in
            let stamp = (Int64(now.timeIntervalSince1970) - 3600 + Int64(round)) * 1_000_000_000
            var text = ""
            text.reserveCapacity(10_000 * 140)
            for index in 0..<10_000 {
                let node = index / 10
                text += "node_bucket,node=node-\(node),bucket=bkt-\(index % 10),region=\(regions[node % 8]) latency_ms=\(Double(index % 97) + 0.5),online=1i,upl_bytes=\(index * 131)i,dwl_bytes=\(index * 17)i \(stamp)\n"
            }
            return Array(text.utf8)
        }
        // Register the series before measuring (steady state: series already known).
        _ = try bodies[0].withUnsafeBytes { bytes in
            try store.write(LineProtocolParser().parse(bytes).points.map(toSeriesPoint), now: now, sync: false)
        }
        var next = 1
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let body = bodies[next % bodies.count]
            next += 1
            let parsed = body.withUnsafeBytes { LineProtocolParser().parse($0) }
            let outcome = try store.write(parsed.points.map(toSeriesPoint), now: now, sync: false)
            blackHole(outcome.stored)
        }
        benchmark.stopMeasurement()
        db.close()
    }
}

func toSeriesPoint(_ point: LinePoint) -> SeriesPoint {
    SeriesPoint(organization: "bench", measurement: point.measurement,
                tags: point.tags.map { (key: $0.key, value: $0.value) },
                fields: point.fields.compactMap { field in field.value.numericValue.map { (name: field.key, value: $0) } },
                timestamp: point.timestamp ?? 0)
}

import CollectorModel
import CollectorTesting
import Foundation
import RocksDB
import SwiftProtobuf
import Testing
import TimeSeries
@testable import RemoteWrite

@Suite("Remote-write encoding: names, labels, time order, derived series")
struct RemoteWriteEncoderTests {
    static let minute: Int64 = 1_773_100_800  // a minute start (2026-03-10T00:00:00Z)

    @Test func prometheusNamesFollowTheDataModel() {
        #expect(PrometheusNames.metricName(measurement: "bucket_traffic", field: "upl_bytes") == "bucket_traffic_upl_bytes")
        #expect(PrometheusNames.metricName(measurement: "cpu.load", field: "1m") == "cpu_load_1m")
        #expect(PrometheusNames.metricName(measurement: "9lives", field: "x") == "_9lives_x")
        #expect(PrometheusNames.metricName(measurement: "a:b", field: "ü") == "a_b__")
        #expect(PrometheusNames.labelName("host-name") == "host_name")
        #expect(PrometheusNames.labelName("organization") == "exported_organization")
        #expect(PrometheusNames.labelName("__name__") == "exported___name__")
        #expect(PrometheusNames.labelName("2xx") == "_2xx")
    }

    /// Writes each of `writes` through a store with one destination and gives `body` the store
    /// and what it queued.
    static func queued<T>(_ writes: [[SeriesPoint]], _ body: (TimeSeriesStore, [RemoteOutbox.Entry]) throws -> T) throws -> T {
        let directory = TemporaryDirectory(prefix: "rw-encode")
        var settings = TimeSeriesSettings()
        settings.remoteWriteDestinations = ["a"]
        settings.maxSampleAge = 10 * 365 * 86_400
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        defer { db.close() }
        let store = try TimeSeriesStore(database: db, settings: settings)
        for points in writes {
            _ = try store.write(points, now: Date(timeIntervalSince1970: TimeInterval(minute + 3600)), sync: false)
        }
        return try body(store, try #require(store.outbox).entries(for: "a", maxSamples: 1_000_000))
    }

    /// Writes `points` one by one through a store with one destination and encodes what it queued.
    static func encode(_ points: [SeriesPoint]) throws -> [(name: String, labels: [[String]], samples: [(Int64, Double)])] {
        try queued(points.map { [$0] }) { store, entries in
            try encode(entries, index: store.index, samples: points.reduce(0) { $0 + $1.fields.count })
        }
    }

    static func encode(_ entries: [RemoteOutbox.Entry], index: SeriesIndex, samples: Int) throws -> [(name: String, labels: [[String]], samples: [(Int64, Double)])] {
        var encoder = RemoteWriteEncoder(index: index)
        let request = try encoder.writeRequest(entries)
        // The body is that request, snappy-compressed and serialized byte for byte as
        // SwiftProtobuf serializes it.
        let encoded = try encoder.encode(entries)
        #expect(encoded.samples == samples)
        let body = try #require(Snappy.decompress(encoded.body, maxLength: 1 << 20))
        #expect(body == (try request.serializedBytes() as [UInt8]))
        #expect(try Prometheus_WriteRequest(serializedBytes: body) == request)
        return request.timeseries.map { series in
            (series.labels.first { $0.name == "__name__" }?.value ?? "", series.labels.map { [$0.name, $0.value] },
             series.samples.map { ($0.timestamp, $0.value) })
        }.sorted { $0.name < $1.name }
    }

    @Test func seriesCarrySortedLabelsAndTimeOrderedMillisecondSamples() throws {
        let base = Self.minute * 1_000_000_000
        let tags = [(key: "bucket", value: "b1"), (key: "host", value: "h"), (key: "node", value: "n1"), (key: "organization", value: "spoof")]
        let series = try Self.encode([
            // Out of order across writes; nanoseconds rounded down to the millisecond.
            SeriesPoint(organization: "acme", measurement: "bucket_traffic", tags: tags,
                        fields: [(name: "upl_bytes", value: 7)], timestamp: base + 5_000_999_999),
            SeriesPoint(organization: "acme", measurement: "bucket_traffic", tags: tags,
                        fields: [(name: "upl_bytes", value: 3)], timestamp: base + 1_000_000_001),
            // A public node's series: no organization label.
            SeriesPoint(organization: "", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b2")],
                        fields: [(name: "dwl_bytes", value: 1.5)], timestamp: base),
        ])
        #expect(series.map(\.name) == ["bucket_traffic_dwl_bytes", "bucket_traffic_upl_bytes"])
        #expect(series[0].labels == [["__name__", "bucket_traffic_dwl_bytes"], ["bucket", "b2"]])
        #expect(series[1].labels == [["__name__", "bucket_traffic_upl_bytes"], ["bucket", "b1"], ["exported_organization", "spoof"],
                                     ["host", "h"], ["node", "n1"], ["organization", "acme"]])
        #expect(series[1].samples.map(\.0) == [Self.minute * 1000 + 1000, Self.minute * 1000 + 5000])
        #expect(series[1].samples.map(\.1) == [3, 7])
    }

    @Test func statusReportsGetOnlineMinuteAndTimestampSeries() throws {
        let base = Self.minute * 1_000_000_000
        func status(_ offsetMillis: Int64, _ value: Double) -> SeriesPoint {
            SeriesPoint(organization: "acme", measurement: FleetSchema.NodeStatus.measurement, tags: [(key: "bucket", value: "b1"), (key: "node", value: "n1")],
                        fields: [(name: FleetSchema.NodeStatus.status, value: value)], timestamp: base + offsetMillis * 1_000_000)
        }
        // Minute 0: ONLINE twice (one online-minute sample), minute 1: OFFLINE only, minute 2:
        // DISCONNECTED then ONLINE at its last millisecond.
        let series = try Self.encode([status(0, 1), status(30_000, 1), status(61_000, 0), status(120_000, -1), status(179_999, 1)])
        let byName = Dictionary(series.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let online = try #require(byName["node_status_status:online_minute"])
        #expect(online.samples.map(\.0) == [Self.minute * 1000, Self.minute * 1000 + 120_000])
        #expect(online.samples.map(\.1) == [1, 1])
        let times = try #require(byName["node_status_status:timestamp_seconds"])
        #expect(times.samples.map(\.1) == [0, 30_000, 61_000, 120_000, 179_999].map { Double(Self.minute * 1000 + $0) / 1000 })
        #expect(byName["node_status_status"]?.samples.map(\.1) == [1, 1, 0, -1, 1])
        // Same labels as the status series apart from the name.
        #expect(online.labels.filter { $0[0] != "__name__" } == byName["node_status_status"]?.labels.filter { $0[0] != "__name__" })
    }

    @Test func manyWritesOfManySeriesFrameExactlyAndSurviveACacheReset() throws {
        let base = Self.minute * 1_000_000_000
        // 40 series × 3 fields, in 5 writes whose times go back and forth, with values that are
        // zero (left out on the wire), negative and fractional.
        let minutes: [Int64] = [3, 1, 4, 0, 2]
        let writes: [[SeriesPoint]] = minutes.enumerated().map { round, minute in
            (0..<40).map { (series: Int) -> SeriesPoint in
                let fields: [(name: String, value: Double)] = [
                    (name: "upl_bytes", value: Double(series * round)), (name: "requests", value: -Double(round)),
                    (name: "latency_ms", value: 0.25 * Double(series)),
                ]
                return SeriesPoint(organization: "acme", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b\(series)")],
                                   fields: fields, timestamp: base + minute * 60_000_000_000 + Int64(series))
            }
        }
        try Self.queued(writes) { store, entries in
            #expect(entries.count == 5)
            var fresh = RemoteWriteEncoder(index: store.index)
            let request = try fresh.writeRequest(entries)
            #expect(request.timeseries.count == 120)
            #expect(request.timeseries.allSatisfy { $0.samples.map(\.timestamp) == $0.samples.map(\.timestamp).sorted() && $0.samples.count == 5 })
            let expected: [UInt8] = try request.serializedBytes()
            // An encoder whose caches start over at every request frames the same bytes.
            var forgetful = RemoteWriteEncoder(index: store.index, cacheLimit: 1)
            for _ in 0..<2 {
                let encoded = try forgetful.encode(entries)
                #expect(Snappy.decompress(encoded.body, maxLength: 1 << 24) == expected)
                #expect(encoded.series == 120 && encoded.samples == 600 && encoded.uncompressedBytes == expected.count)
            }
        }
    }
}

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

    /// Writes `points` through a store with one destination and encodes what it queued.
    static func encode(_ points: [SeriesPoint]) throws -> [(name: String, labels: [[String]], samples: [(Int64, Double)])] {
        let directory = TemporaryDirectory(prefix: "rw-encode")
        var settings = TimeSeriesSettings()
        settings.remoteWriteDestinations = ["a"]
        settings.maxSampleAge = 10 * 365 * 86_400
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        defer { db.close() }
        let store = try TimeSeriesStore(database: db, settings: settings)
        for point in points {
            _ = try store.write([point], now: Date(timeIntervalSince1970: TimeInterval(minute + 3600)), sync: false)
        }
        let outbox = try #require(store.outbox)
        var encoder = RemoteWriteEncoder(index: store.index)
        let entries = try outbox.entries(for: "a", maxSamples: 1_000)
        let request = encoder.writeRequest(entries)
        // The body is that request, serialized and snappy-compressed.
        let encoded = try encoder.encode(entries)
        #expect(encoded.samples == points.reduce(0) { $0 + $1.fields.count })
        let decoded = try Prometheus_WriteRequest(serializedBytes: try #require(Snappy.decompress(encoded.body, maxLength: 1 << 20)))
        #expect(decoded == request)
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
}

import CollectorModel
import SwiftProtobuf
import TimeSeries

/// Turns outbox entries into one remote_write 1.0 `WriteRequest`: one time series per (series,
/// field) and per derived series, labels sorted by name, samples in time order, timestamps in
/// milliseconds (a sample's nanoseconds rounded down, which keeps it in the same minute and day).
/// Of several samples of one series and field in the same millisecond, the later accepted one is
/// sent (Prometheus' data model holds one sample per millisecond; the local store keeps the
/// later value of a repeated time the same way).
///
/// The labels of a series are built once and kept (series keys never change).
/// Not thread-safe: each sender owns one.
public struct RemoteWriteEncoder {
    private let index: SeriesIndex
    /// Labels (without `__name__`) and measurement per series id.
    private var seriesLabels: [UInt64: (measurement: String, labels: [Prometheus_Label])] = [:]
    private var fieldNames: [UInt16: String] = [:]

    /// An encoder naming series from `index`.
    public init(index: SeriesIndex) {
        self.index = index
    }

    /// What one request carries.
    public struct Encoded: Sendable {
        /// The snappy-compressed `WriteRequest`.
        public var body: [UInt8]
        /// Accepted samples it forwards (the entries' count; derived series not counted).
        public var samples: Int
        /// Time series in it, derived ones included.
        public var series: Int
        /// Bytes of the `WriteRequest` before compression.
        public var uncompressedBytes: Int
    }

    /// The request for `entries`.
    public mutating func encode(_ entries: [RemoteOutbox.Entry]) throws -> Encoded {
        let request = writeRequest(entries)
        let bytes: [UInt8] = try request.serializedBytes()
        return Encoded(body: Snappy.compress(bytes), samples: entries.reduce(0) { $0 + $1.samples }, series: request.timeseries.count, uncompressedBytes: bytes.count)
    }

    /// The `WriteRequest` for `entries` (exposed for tests).
    package mutating func writeRequest(_ entries: [RemoteOutbox.Entry]) -> Prometheus_WriteRequest {
        struct Key: Hashable {
            var series: UInt64
            var field: UInt16
            /// 0: the samples, 1: online minutes, 2: timestamps.
            var kind: UInt8
        }
        var positions: [Key: Int] = [:]
        var series: [Prometheus_TimeSeries] = []
        var unsorted: Set<Int> = []

        func append(_ key: Key, _ timestamp: Int64, _ value: Double, name: () -> String?, labels: () -> [Prometheus_Label]?) {
            let position: Int
            if let known = positions[key] {
                position = known
            } else {
                guard let name = name(), let labels = labels() else { return }
                var one = Prometheus_TimeSeries()
                var all = labels
                var nameLabel = Prometheus_Label()
                nameLabel.name = "__name__"
                nameLabel.value = name
                all.append(nameLabel)
                all.sort { $0.name < $1.name }
                one.labels = all
                position = series.count
                series.append(one)
                positions[key] = position
            }
            var sample = Prometheus_Sample()
            sample.timestamp = timestamp
            sample.value = value
            if let last = series[position].samples.last {
                // One sample per millisecond, the later accepted one, as the local store keeps the
                // later value of a repeated time (and an online minute reported again is sent once).
                if last.timestamp == timestamp {
                    series[position].samples[series[position].samples.count - 1].value = value
                    return
                }
                if last.timestamp > timestamp { unsorted.insert(position) }
            }
            series[position].samples.append(sample)
        }

        for entry in entries {
            let decoded = entry.logEntry.withUnsafeBytes { bytes in
                IngestLogEntry.decode(bytes) { id, sample in
                    // Line protocol and the JSON bodies refuse NaN and infinities; a value that is
                    // not finite here would be a staleness marker to the receiver.
                    guard sample.value.isFinite, let (measurement, labels) = self.labels(of: id),
                          let field = self.fieldName(sample.field) else { return }
                    let millis = sample.timestamp >= 0 ? sample.timestamp / 1_000_000 : (sample.timestamp - 999_999) / 1_000_000
                    let metric = PrometheusNames.metricName(measurement: measurement, field: field)
                    append(Key(series: id, field: sample.field, kind: 0), millis, sample.value, name: { metric }, labels: { labels })
                    guard DerivedSeries.applies(measurement: measurement, field: field) else { return }
                    if sample.value > 0 {
                        let minuteStart = millis - ((millis % 60_000) + 60_000) % 60_000
                        append(Key(series: id, field: sample.field, kind: 1), minuteStart, 1,
                               name: { metric + DerivedSeries.onlineMinuteSuffix }, labels: { labels })
                    }
                    append(Key(series: id, field: sample.field, kind: 2), millis, Double(millis) / 1000,
                           name: { metric + DerivedSeries.timestampSuffix }, labels: { labels })
                }
            }
            // An entry that does not decode was damaged on disk; its samples are in the local
            // store's log checks too (the open refuses a damaged log), so it is skipped here.
            _ = decoded
        }
        for position in unsorted {
            // Stable: of two samples with the same time, the later-accepted one stays last.
            let ordered = series[position].samples.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
            var samples: [Prometheus_Sample] = []
            samples.reserveCapacity(ordered.count)
            for (_, sample) in ordered {
                if let last = samples.last, last.timestamp == sample.timestamp {
                    samples[samples.count - 1] = sample
                    continue
                }
                samples.append(sample)
            }
            series[position].samples = samples
        }
        var request = Prometheus_WriteRequest()
        request.timeseries = series
        return request
    }

    private mutating func labels(of id: UInt64) -> (String, [Prometheus_Label])? {
        if let known = seriesLabels[id] { return (known.measurement, known.labels) }
        guard let key = index.series(id: id) else { return nil }
        var labels: [Prometheus_Label] = []
        var used: Set<String> = ["__name__"]
        func add(_ name: String, _ value: String) {
            // Two tag keys that sanitize to one name: the first (in key order) keeps it.
            guard !value.isEmpty, used.insert(name).inserted else { return }
            var label = Prometheus_Label()
            label.name = name
            label.value = value
            labels.append(label)
        }
        add(PrometheusNames.organizationLabel, key.organization)
        for tag in key.tags { add(PrometheusNames.labelName(tag.key), tag.value) }
        let measurement = key.measurement
        seriesLabels[id] = (measurement, labels)
        return (measurement, labels)
    }

    private mutating func fieldName(_ id: UInt16) -> String? {
        if let known = fieldNames[id] { return known }
        let name = index.fieldName(id)
        fieldNames[id] = name
        return name
    }
}

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
    /// Per sent series (series, field, kind): its labels, `__name__` included, encoded once as
    /// the unknown fields of an otherwise empty series (see `WriteRequestWithEncodedLabels`).
    private var templates: [Key: Prometheus_TimeSeriesWithEncodedLabels] = [:]
    /// Beyond this many cached series the caches start over (memory stays bounded whatever the
    /// cardinality; a series seen again is encoded again).
    private let cacheLimit: Int

    /// An encoder naming series from `index`.
    public init(index: SeriesIndex, cacheLimit: Int = 500_000) {
        self.index = index
        self.cacheLimit = cacheLimit
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

    struct Key: Hashable {
        var series: UInt64
        var field: UInt16
        /// 0: the samples, 1: online minutes, 2: timestamps.
        var kind: UInt8
    }

    /// One outgoing series of a request.
    struct Group {
        var key: Key
        var samples: [Prometheus_Sample]
    }

    /// The request for `entries`: each series' samples encoded, its labels copied from the
    /// template encoded the first time it was sent.
    public mutating func encode(_ entries: [RemoteOutbox.Entry]) throws -> Encoded {
        let groups = collect(entries)
        if templates.count + groups.count > cacheLimit { templates.removeAll(keepingCapacity: true) }
        var request = Prometheus_WriteRequestWithEncodedLabels()
        request.timeseries.reserveCapacity(groups.count)
        for group in groups {
            var series: Prometheus_TimeSeriesWithEncodedLabels
            if let known = templates[group.key] {
                series = known
            } else {
                var labeled = Prometheus_TimeSeries()
                labeled.labels = labels(group)
                series = try Prometheus_TimeSeriesWithEncodedLabels(serializedBytes: try labeled.serializedBytes() as [UInt8])
                templates[group.key] = series
            }
            series.samples = group.samples
            request.timeseries.append(series)
        }
        let bytes: [UInt8] = try request.serializedBytes()
        return Encoded(body: Snappy.compress(bytes), samples: entries.reduce(0) { $0 + $1.samples }, series: groups.count, uncompressedBytes: bytes.count)
    }

    /// The `WriteRequest` for `entries` as a receiver reads it (for tests).
    package mutating func writeRequest(_ entries: [RemoteOutbox.Entry]) -> Prometheus_WriteRequest {
        var request = Prometheus_WriteRequest()
        request.timeseries = collect(entries).map { group in
            var series = Prometheus_TimeSeries()
            series.labels = labels(group)
            series.samples = group.samples
            return series
        }
        return request
    }

    /// A group's labels, `__name__` included, sorted by name.
    private mutating func labels(_ group: Group) -> [Prometheus_Label] {
        let (measurement, tags) = self.labels(of: group.key.series) ?? ("", [])
        var metric = PrometheusNames.metricName(measurement: measurement, field: fieldName(group.key.field) ?? "")
        switch group.key.kind {
        case 1: metric += DerivedSeries.onlineMinuteSuffix
        case 2: metric += DerivedSeries.timestampSuffix
        default: break
        }
        var all = tags
        var nameLabel = Prometheus_Label()
        nameLabel.name = "__name__"
        nameLabel.value = metric
        all.append(nameLabel)
        all.sort { $0.name < $1.name }
        return all
    }

    /// The outgoing series of `entries`, in order of first appearance, each with one sample per
    /// millisecond (the later accepted) in time order, and the derived series.
    private mutating func collect(_ entries: [RemoteOutbox.Entry]) -> [Group] {
        if seriesLabels.count > cacheLimit { seriesLabels.removeAll(keepingCapacity: true) }
        var positions: [Key: Int] = [:]
        var groups: [Group] = []
        var unsorted: Set<Int> = []

        func append(_ key: Key, _ timestamp: Int64, _ value: Double) {
            let position: Int
            if let known = positions[key] {
                position = known
            } else {
                position = groups.count
                groups.append(Group(key: key, samples: []))
                positions[key] = position
            }
            var sample = Prometheus_Sample()
            sample.timestamp = timestamp
            sample.value = value
            if let last = groups[position].samples.last {
                // One sample per millisecond, the later accepted one, as the local store keeps the
                // later value of a repeated time (and an online minute reported again is sent once).
                if last.timestamp == timestamp {
                    groups[position].samples[groups[position].samples.count - 1].value = value
                    return
                }
                if last.timestamp > timestamp { unsorted.insert(position) }
            }
            groups[position].samples.append(sample)
        }

        for entry in entries {
            // An entry that does not decode was damaged on disk (the local store's open refuses a
            // damaged log the same way); its samples are skipped here.
            _ = entry.logEntry.withUnsafeBytes { bytes in
                IngestLogEntry.decode(bytes) { id, sample in
                    // Line protocol and the JSON bodies refuse NaN and infinities; a value that is
                    // not finite here would be a staleness marker to the receiver.
                    guard sample.value.isFinite, let (measurement, _) = self.labels(of: id),
                          let field = self.fieldName(sample.field) else { return }
                    let millis = sample.timestamp >= 0 ? sample.timestamp / 1_000_000 : (sample.timestamp - 999_999) / 1_000_000
                    append(Key(series: id, field: sample.field, kind: 0), millis, sample.value)
                    guard DerivedSeries.applies(measurement: measurement, field: field) else { return }
                    if sample.value > 0 {
                        let minuteStart = millis - ((millis % 60_000) + 60_000) % 60_000
                        append(Key(series: id, field: sample.field, kind: 1), minuteStart, 1)
                    }
                    append(Key(series: id, field: sample.field, kind: 2), millis, Double(millis) / 1000)
                }
            }
        }
        for position in unsorted {
            // Stable: of two samples with the same time, the later-accepted one is kept.
            let ordered = groups[position].samples.enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
            var samples: [Prometheus_Sample] = []
            samples.reserveCapacity(ordered.count)
            for (_, sample) in ordered {
                if let last = samples.last, last.timestamp == sample.timestamp {
                    samples[samples.count - 1] = sample
                    continue
                }
                samples.append(sample)
            }
            groups[position].samples = samples
        }
        return groups
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

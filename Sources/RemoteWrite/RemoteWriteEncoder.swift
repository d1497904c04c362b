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
/// The labels of an outgoing series are serialized once by SwiftProtobuf (a `TimeSeries` holding
/// only them) and kept; a request is then those bytes and its samples, framed as `WriteRequest`
/// fields in one pass into a buffer of the exact size (the same bytes SwiftProtobuf writes for
/// the message; tests compare them).
/// Not thread-safe: each sender owns one.
public struct RemoteWriteEncoder {
    private let index: SeriesIndex
    /// Beyond this many outgoing series the caches start over (memory stays bounded whatever the
    /// cardinality; a series seen again is named again).
    private let cacheLimit: Int

    /// An outgoing series.
    private struct Slot {
        /// Its `labels` field entries, `__name__` included, sorted by name.
        var labels: [UInt8]
        /// Its position among the series of the request being built, or -1.
        var group: Int32 = -1
    }

    /// The outgoing series of one stored series, per field.
    private struct KnownSeries {
        var measurement: String
        /// Without `__name__`.
        var labels: [Prometheus_Label]
        /// The field's slot; with derived series, the online minutes at `slot + 1` and the
        /// timestamps at `slot + 2`.
        var fields: [(field: UInt16, slot: Int32, derived: Bool)] = []
    }

    private var slots: [Slot] = []
    private var series: [UInt64: KnownSeries] = [:]
    private var fieldNames: [UInt16: String] = [:]

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
        /// The oldest sample's time (milliseconds), `nil` without samples.
        public var oldestMillis: Int64? = nil
        /// The day it marks as delivered late (``LateDayMark``), if any.
        public var markedDay: Int64? = nil
    }

    /// The outgoing series of a request, each with its samples.
    struct Collected {
        /// Slot of each series, in order of first appearance.
        var slots: [Int32] = []
        /// Each series' samples in `samples`.
        var ranges: [Range<Int>] = []
        /// Time order within a series, one per millisecond.
        var samples: [(timestamp: Int64, value: Double)] = []
    }

    /// The request for `entries`, serialized and compressed.
    /// With `lateDay`, the request also carries the mark of that day delivered late at
    /// `lateDay.atMillis` (``LateDayMark``).
    public mutating func encode(_ entries: [RemoteOutbox.Entry], lateDay: (day: Int64, atMillis: Int64)? = nil) throws -> Encoded {
        var collected = collect(entries)
        let oldest = collected.samples.lazy.map(\.timestamp).min()
        if let lateDay { mark(lateDay, in: &collected) }
        let bytes = serialize(collected)
        return Encoded(body: Snappy.compress(bytes), samples: entries.reduce(0) { $0 + $1.samples },
                       series: collected.slots.count, uncompressedBytes: bytes.count, oldestMillis: oldest, markedDay: lateDay?.day)
    }

    /// Adds the late-delivery mark of `lateDay` to `collected`.
    private mutating func mark(_ lateDay: (day: Int64, atMillis: Int64), in collected: inout Collected) {
        var day = Prometheus_Label()
        day.name = LateDayMark.dayLabel
        day.value = String(lateDay.day)
        slots.append(Slot(labels: Self.encodedLabels([day], name: LateDayMark.metric)))
        collected.slots.append(Int32(slots.count - 1))
        collected.ranges.append(collected.samples.count..<collected.samples.count + 1)
        collected.samples.append((lateDay.atMillis, Double(lateDay.atMillis) / 1000))
    }

    /// The `WriteRequest` for `entries` as a receiver reads it (for tests).
    package mutating func writeRequest(_ entries: [RemoteOutbox.Entry]) throws -> Prometheus_WriteRequest {
        let collected = collect(entries)
        var request = Prometheus_WriteRequest()
        for (slot, range) in zip(collected.slots, collected.ranges) {
            var series = try Prometheus_TimeSeries(serializedBytes: slots[Int(slot)].labels)
            series.samples = collected.samples[range].map { sample in
                var out = Prometheus_Sample()
                out.timestamp = sample.timestamp
                out.value = sample.value
                return out
            }
            request.timeseries.append(series)
        }
        return request
    }

    // MARK: Grouping

    /// The outgoing series of `entries` with their samples.
    private mutating func collect(_ entries: [RemoteOutbox.Entry]) -> Collected {
        if slots.count > cacheLimit {
            slots.removeAll(keepingCapacity: true)
            series.removeAll(keepingCapacity: true)
        }
        // Samples in arrival order with the series they go to, then placed series by series.
        var groups: [Int32] = []
        var counts: [Int] = []
        var arrived: [(group: Int32, timestamp: Int64, value: Double)] = []
        arrived.reserveCapacity(entries.reduce(0) { $0 + $1.samples })

        func add(_ slot: Int32, _ timestamp: Int64, _ value: Double) {
            var group = slots[Int(slot)].group
            if group < 0 {
                group = Int32(groups.count)
                slots[Int(slot)].group = group
                groups.append(slot)
                counts.append(0)
            }
            counts[Int(group)] += 1
            arrived.append((group, timestamp, value))
        }

        for entry in entries {
            // An entry that does not decode was damaged on disk (the local store's open refuses a
            // damaged log the same way); its samples are skipped here.
            _ = entry.logEntry.withUnsafeBytes { bytes in
                IngestLogEntry.decodePoints(bytes) { id, nanoseconds, fields in
                    let millis = nanoseconds >= 0 ? nanoseconds / 1_000_000 : (nanoseconds - 999_999) / 1_000_000
                    for index in 0..<fields.count {
                        let (field, value) = fields[index]
                        // Line protocol and the JSON bodies refuse NaN and infinities; a value that
                        // is not finite here would be a staleness marker to the receiver.
                        guard value.isFinite, let (slot, derived) = self.slot(series: id, field: field) else { continue }
                        add(slot, millis, value)
                        guard derived else { continue }
                        if value > 0 {
                            let minuteStart = millis - ((millis % 60_000) + 60_000) % 60_000
                            add(slot + 1, minuteStart, 1)
                        }
                        add(slot + 2, millis, Double(millis) / 1000)
                    }
                }
            }
        }
        for slot in groups { slots[Int(slot)].group = -1 }

        // Each series' samples together, in arrival order (stable).
        var next = [Int](repeating: 0, count: groups.count)
        var total = 0
        for (group, count) in counts.enumerated() {
            next[group] = total
            total += count
        }
        var placed = [(timestamp: Int64, value: Double)](repeating: (0, 0), count: total)
        for sample in arrived {
            placed[next[Int(sample.group)]] = (sample.timestamp, sample.value)
            next[Int(sample.group)] += 1
        }

        // Time order, one sample per millisecond: of equal times the later accepted.
        var collected = Collected(slots: groups)
        collected.ranges.reserveCapacity(groups.count)
        collected.samples.reserveCapacity(total)
        var start = 0
        for count in counts {
            let range = start..<(start + count)
            start += count
            var ordered = true
            for position in range.dropFirst() where placed[position].timestamp < placed[position - 1].timestamp {
                ordered = false
                break
            }
            let first = collected.samples.count
            func keep(_ sample: (timestamp: Int64, value: Double)) {
                if collected.samples.count > first, collected.samples[collected.samples.count - 1].timestamp == sample.timestamp {
                    collected.samples[collected.samples.count - 1] = sample
                } else {
                    collected.samples.append(sample)
                }
            }
            if ordered {
                for position in range { keep(placed[position]) }
            } else {
                let sorted = placed[range].enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
                for (_, sample) in sorted { keep(sample) }
            }
            collected.ranges.append(first..<collected.samples.count)
        }
        return collected
    }

    /// The slot of (`id`, `field`) and whether it has derived series; `nil` for a series or
    /// field the index does not know.
    private mutating func slot(series id: UInt64, field: UInt16) -> (Int32, Bool)? {
        if let known = series[id] {
            for entry in known.fields where entry.field == field { return (entry.slot, entry.derived) }
        } else {
            guard let key = index.series(id: id) else { return nil }
            series[id] = KnownSeries(measurement: key.measurement, labels: Self.labels(of: key))
        }
        guard let known = series[id], let name = fieldName(field) else { return nil }
        let derived = DerivedSeries.applies(measurement: known.measurement, field: name)
        let slot = Int32(slots.count)
        let metric = PrometheusNames.metricName(measurement: known.measurement, field: name)
        for suffix in derived ? ["", DerivedSeries.onlineMinuteSuffix, DerivedSeries.timestampSuffix] : [""] {
            slots.append(Slot(labels: Self.encodedLabels(known.labels, name: metric + suffix)))
        }
        series[id]?.fields.append((field, slot, derived))
        return (slot, derived)
    }

    /// A series' labels without `__name__`: `organization` and its tags, sanitized.
    private static func labels(of key: SeriesKey) -> [Prometheus_Label] {
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
        return labels
    }

    /// `labels` and `__name__` sorted by name, as the `labels` field entries of a `TimeSeries`.
    private static func encodedLabels(_ labels: [Prometheus_Label], name: String) -> [UInt8] {
        var nameLabel = Prometheus_Label()
        nameLabel.name = "__name__"
        nameLabel.value = name
        var series = Prometheus_TimeSeries()
        series.labels = (labels + [nameLabel]).sorted { $0.name < $1.name }
        // Strings and repeated messages always serialize.
        return (try? series.serializedBytes()) ?? []
    }

    private mutating func fieldName(_ id: UInt16) -> String? {
        if let known = fieldNames[id] { return known }
        let name = index.fieldName(id)
        fieldNames[id] = name
        return name
    }

    // MARK: Framing

    /// `WriteRequest { repeated TimeSeries timeseries = 1 }`, each `TimeSeries { labels = 1
    /// (kept bytes); repeated Sample samples = 2 }`, each `Sample { double value = 1; int64
    /// timestamp = 2 }` with proto3's defaults (0) left out, as SwiftProtobuf writes them.
    private func serialize(_ collected: Collected) -> [UInt8] {
        var sizes = [Int](repeating: 0, count: collected.slots.count)
        var total = 0
        for (group, slot) in collected.slots.enumerated() {
            var size = slots[Int(slot)].labels.count
            for sample in collected.samples[collected.ranges[group]] {
                let length = Self.sampleLength(sample)
                size += 1 + Protobuf.varintLength(UInt64(length)) + length
            }
            sizes[group] = size
            total += 1 + Protobuf.varintLength(UInt64(size)) + size
        }
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
            var writer = Protobuf.Writer(buffer)
            for (group, slot) in collected.slots.enumerated() {
                writer.tag(1, .lengthDelimited)
                writer.varint(UInt64(sizes[group]))
                writer.bytes(slots[Int(slot)].labels)
                for sample in collected.samples[collected.ranges[group]] {
                    writer.tag(2, .lengthDelimited)
                    writer.varint(UInt64(Self.sampleLength(sample)))
                    if sample.value.bitPattern != 0 {
                        writer.tag(1, .fixed64)
                        writer.fixed64(sample.value.bitPattern)
                    }
                    if sample.timestamp != 0 {
                        writer.tag(2, .varint)
                        writer.varint(UInt64(bitPattern: sample.timestamp))
                    }
                }
            }
            count = writer.written
            precondition(count == total, "a WriteRequest of \(count) bytes where \(total) were computed")
        }
    }

    private static func sampleLength(_ sample: (timestamp: Int64, value: Double)) -> Int {
        (sample.value.bitPattern != 0 ? 9 : 0)
            + (sample.timestamp != 0 ? 1 + Protobuf.varintLength(UInt64(bitPattern: sample.timestamp)) : 0)
    }
}

/// The few protobuf wire-format pieces the request framing needs.
enum Protobuf {
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
    }

    static func varintLength(_ value: UInt64) -> Int {
        // 7 bits per byte; 0 takes one byte.
        max(1, (64 - value.leadingZeroBitCount + 6) / 7)
    }

    /// Writes into a buffer sized beforehand; never past its end.
    struct Writer {
        private let buffer: UnsafeMutableBufferPointer<UInt8>
        private(set) var written = 0

        init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
            self.buffer = buffer
        }

        mutating func tag(_ field: UInt8, _ type: WireType) {
            byte(field << 3 | type.rawValue)
        }

        mutating func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                byte(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            byte(UInt8(rest))
        }

        mutating func fixed64(_ value: UInt64) {
            precondition(written + 8 <= buffer.count, "protobuf writer past its buffer")
            withUnsafeBytes(of: value.littleEndian) { source in
                UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[written..<(written + 8)]).copyMemory(from: source)
            }
            written += 8
        }

        mutating func bytes(_ value: [UInt8]) {
            precondition(written + value.count <= buffer.count, "protobuf writer past its buffer")
            value.withUnsafeBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[written..<(written + value.count)]).copyMemory(from: source)
            }
            written += value.count
        }

        private mutating func byte(_ value: UInt8) {
            precondition(written < buffer.count, "protobuf writer past its buffer")
            buffer[written] = value
            written += 1
        }
    }
}

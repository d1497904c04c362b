/// One sample of one field inside a sample block.
public struct FieldSample: Equatable, Sendable {
    /// Index of the field in the collector's field dictionary.
    public var field: UInt16
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64
    public var value: Double

    /// A `FieldSample` from its parts.
    public init(field: UInt16, timestamp: Int64, value: Double) {
        self.field = field
        self.timestamp = timestamp
        self.value = value
    }
}

/// The samples of one series (measurement + tags) in one hour, for every field: the unit of
/// storage in the `samples` column family, and also the merge operand that adds samples to it.
/// Minute rollups are computed from a block; day rollups from a day's blocks until the day is
/// sealed into the `day` column family.
///
/// Invariant: samples are sorted by (field, timestamp) and unique per (field, timestamp), so the
/// rollups derived from a record are a function of the *set* of samples: writing the same sample
/// twice changes nothing, and a later write of the same (field, timestamp) replaces the value
/// ("the later value wins", as in InfluxDB).
///
/// Encoding (docs/format.md): `0x01 ‖ count u32 BE ‖ count × (field u16 BE ‖ timestamp i64 BE ‖
/// value f64 bit pattern BE)`, 18 bytes per sample.
public struct SampleBlock: Equatable, Sendable {
    public static let formatVersion: UInt8 = 1
    static let entrySize = 18
    static let headerSize = 5

    /// Samples sorted by (field, timestamp), unique on that pair.
    public private(set) var samples: [FieldSample]

    /// Builds a record from samples in any order; for a repeated (field, timestamp) the one that
    /// comes later in `samples` wins.
    public init(samples: [FieldSample]) {
        self.samples = SampleBlock.normalise(samples)
    }

    private init(sorted: [FieldSample]) {
        samples = sorted
    }

    static func normalise(_ samples: [FieldSample]) -> [FieldSample] {
        if let grouped = groupedByField(samples) { return grouped }
        // A stable sort keeps arrival order among equal keys; the last of each run wins.
        let ordered = samples.enumerated().sorted {
            ($0.element.field, $0.element.timestamp, $0.offset) < ($1.element.field, $1.element.timestamp, $1.offset)
        }
        var out: [FieldSample] = []
        out.reserveCapacity(ordered.count)
        for (_, sample) in ordered {
            if let last = out.last, last.field == sample.field, last.timestamp == sample.timestamp {
                out[out.count - 1] = sample
            } else {
                out.append(sample)
            }
        }
        return out
    }

    /// ``normalise(_:)`` for what a flush holds: few fields, mostly in time order (samples
    /// arrive line by line, each line's fields at one time; concurrent requests may interleave
    /// their times). A stable scatter by field, a stable sort of only the runs out of time
    /// order, then repeated times folded (the last wins); `nil` beyond 16 fields.
    static func groupedByField(_ samples: [FieldSample]) -> [FieldSample]? {
        var fields: [UInt16] = []
        var counts: [Int] = []
        for sample in samples {
            if let index = fields.firstIndex(of: sample.field) {
                counts[index] += 1
            } else {
                guard fields.count < 16 else { return nil }
                fields.append(sample.field)
                counts.append(1)
            }
        }
        let order = fields.indices.sorted { fields[$0] < fields[$1] }
        var starts = [Int](repeating: 0, count: fields.count)
        var next = 0
        for index in order {
            starts[index] = next
            next += counts[index]
        }
        var scattered = [FieldSample](repeating: FieldSample(field: 0, timestamp: 0, value: 0), count: samples.count)
        var positions = starts
        for sample in samples {
            let index = fields.firstIndex(of: sample.field) ?? 0
            scattered[positions[index]] = sample
            positions[index] += 1
        }
        for index in fields.indices {
            let run = starts[index]..<(starts[index] + counts[index])
            guard zip(scattered[run], scattered[run].dropFirst()).contains(where: { $0.timestamp > $1.timestamp }) else { continue }
            // Stable: among equal times, arrival order stays, so the last one still wins.
            let sorted = scattered[run].enumerated().sorted { ($0.element.timestamp, $0.offset) < ($1.element.timestamp, $1.offset) }
            scattered.replaceSubrange(run, with: sorted.map(\.element))
        }
        var out: [FieldSample] = []
        out.reserveCapacity(samples.count)
        for sample in scattered {
            if let last = out.last, last.field == sample.field, last.timestamp == sample.timestamp {
                out[out.count - 1] = sample
            } else {
                out.append(sample)
            }
        }
        return out
    }

    /// Merges records oldest first: a later record's sample replaces an earlier one with the
    /// same (field, timestamp).
    public static func merging(_ records: [SampleBlock]) -> SampleBlock {
        guard records.count > 1 else { return records.first ?? SampleBlock(sorted: []) }
        // Every record is sorted and unique: fold them pairwise with a linear merge, the later
        // record winning ties (no sort, which was the merge operator's main cost).
        var merged = records[0].samples
        for record in records.dropFirst() {
            merged = mergeSorted(merged, record.samples)
        }
        return SampleBlock(sorted: merged)
    }

    /// Merges two sorted, unique runs; on an equal (field, timestamp) `later` wins.
    static func mergeSorted(_ earlier: [FieldSample], _ later: [FieldSample]) -> [FieldSample] {
        if earlier.isEmpty { return later }
        if later.isEmpty { return earlier }
        var out: [FieldSample] = []
        out.reserveCapacity(earlier.count + later.count)
        var i = 0
        var j = 0
        while i < earlier.count, j < later.count {
            let a = earlier[i]
            let b = later[j]
            if (a.field, a.timestamp) < (b.field, b.timestamp) {
                out.append(a)
                i += 1
            } else if (b.field, b.timestamp) < (a.field, a.timestamp) {
                out.append(b)
                j += 1
            } else {
                out.append(b)
                i += 1
                j += 1
            }
        }
        out.append(contentsOf: earlier[i...])
        out.append(contentsOf: later[j...])
        return out
    }

    /// The serialized form: the compact encoding (version 4, docs/format.md).
    public func encoded() -> [UInt8] {
        SampleBlockCodec.encode(samples)
    }

    /// The compact encoding with varint timestamps and decimal differences (version 3). Still
    /// read; no longer written.
    public func encodedVarint() -> [UInt8] {
        SampleBlockCodec.encode(samples, version: SampleBlockCodec.varintVersion)
    }

    /// The compact encoding with XOR values only (version 2). Still read; no longer written.
    public func encodedXOR() -> [UInt8] {
        SampleBlockCodec.encode(samples, version: SampleBlockCodec.xorVersion)
    }

    /// The fixed-width encoding (version 1): 18 bytes per sample. Still read; no longer written.
    public func encodedFixedWidth() -> [UInt8] {
        let count = Self.headerSize + samples.count * Self.entrySize
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            raw[0] = Self.formatVersion
            raw.storeBytes(of: UInt32(samples.count).bigEndian, toByteOffset: 1, as: UInt32.self)
            var offset = Self.headerSize
            for sample in samples {
                raw.storeBytes(of: sample.field.bigEndian, toByteOffset: offset, as: UInt16.self)
                raw.storeBytes(of: UInt64(bitPattern: sample.timestamp).bigEndian, toByteOffset: offset + 2, as: UInt64.self)
                raw.storeBytes(of: sample.value.bitPattern.bigEndian, toByteOffset: offset + 10, as: UInt64.self)
                offset += Self.entrySize
            }
            initialized = count
        }
    }

    /// Decodes a serialized record (version 1, 2, 3 or 4); `nil` for a wrong version, length or order.
    public init?(decoding bytes: UnsafeRawBufferPointer) {
        if bytes.first == SampleBlockCodec.version || bytes.first == SampleBlockCodec.varintVersion || bytes.first == SampleBlockCodec.xorVersion {
            guard let samples = SampleBlockCodec.decode(bytes) else { return nil }
            self.init(sorted: samples)
            return
        }
        guard bytes.count >= Self.headerSize, bytes[0] == Self.formatVersion else { return nil }
        let count = Int(readBigEndian(UInt32.self, bytes, at: 1))
        guard bytes.count == Self.headerSize + count * Self.entrySize else { return nil }
        var samples: [FieldSample] = []
        samples.reserveCapacity(count)
        var offset = Self.headerSize
        for _ in 0..<count {
            let sample = FieldSample(
                field: readBigEndian(UInt16.self, bytes, at: offset),
                timestamp: Int64(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 2)),
                value: Double(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 10)))
            if let last = samples.last, (last.field, last.timestamp) >= (sample.field, sample.timestamp) { return nil }
            samples.append(sample)
            offset += Self.entrySize
        }
        self.init(sorted: samples)
    }

    /// A `SampleBlock` from its parts.
    public init?(decoding bytes: [UInt8]) {
        guard let record = bytes.withUnsafeBytes({ SampleBlock(decoding: $0) }) else { return nil }
        self = record
    }

    /// The rollup of one field's samples, or `nil` when the field has none in this block.
    public func rollup(field: UInt16) -> FieldRollup? {
        var rollup: FieldRollup?
        var onlineMinute: UInt32?
        for sample in samples where sample.field == field {
            let minute = RollupKey.minute(ofNanoseconds: sample.timestamp)
            if rollup == nil {
                rollup = FieldRollup(sample: sample)
            } else {
                rollup?.add(sample, onlineMinuteCounted: onlineMinute == minute)
            }
            if sample.value > 0 { onlineMinute = minute }
        }
        return rollup
    }

    /// Per-minute rollups of one field for samples in `[fromNanos, toNanos)`, in time order.
    public func minuteRollups(field: UInt16, fromNanos: Int64, toNanos: Int64) -> [(minute: UInt32, rollup: FieldRollup)] {
        var out: [(minute: UInt32, rollup: FieldRollup)] = []
        for sample in samples where sample.field == field && sample.timestamp >= fromNanos && sample.timestamp < toNanos {
            let minute = RollupKey.minute(ofNanoseconds: sample.timestamp)
            if let last = out.last, last.minute == minute {
                out[out.count - 1].rollup.add(sample, onlineMinuteCounted: last.rollup.onlineMinutes > 0)
            } else {
                out.append((minute, FieldRollup(sample: sample)))
            }
        }
        return out
    }

    /// The fields present in this block.
    /// Whether the block holds a sample of `field` at `timestamp` (samples are sorted by field,
    /// then time).
    public func contains(field: UInt16, timestamp: Int64) -> Bool {
        var low = 0
        var high = samples.count
        while low < high {
            let middle = (low + high) / 2
            let sample = samples[middle]
            if (sample.field, sample.timestamp) < (field, timestamp) { low = middle + 1 } else { high = middle }
        }
        return low < samples.count && samples[low].field == field && samples[low].timestamp == timestamp
    }

    public var fields: [UInt16] {
        var out: [UInt16] = []
        for sample in samples where out.last != sample.field { out.append(sample.field) }
        return out
    }
}

/// count, sum, min, max, first and last (with their times) and the online count of one field
/// over an interval; the same shape for minutes and days, so a day is the merge of its minutes.
public struct FieldRollup: Equatable, Sendable {
    public var count: UInt64
    public var sum: Double
    public var min: Double
    public var max: Double
    public var first: Double
    public var firstTime: Int64
    public var last: Double
    public var lastTime: Int64
    /// Samples with a value above zero (ONLINE reports of a status series).
    public var onlineCount: UInt64
    /// Minutes with at least one sample above zero: the ONLINE minutes of a status series.
    public var onlineMinutes: UInt64

    /// A `FieldRollup` from its parts.
    public init(count: UInt64, sum: Double, min: Double, max: Double, first: Double, firstTime: Int64, last: Double, lastTime: Int64,
                onlineCount: UInt64, onlineMinutes: UInt64) {
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.first = first
        self.firstTime = firstTime
        self.last = last
        self.lastTime = lastTime
        self.onlineCount = onlineCount
        self.onlineMinutes = onlineMinutes
    }

    /// A `FieldRollup` from its parts.
    public init(sample: FieldSample) {
        count = 1
        sum = sample.value
        min = sample.value
        max = sample.value
        first = sample.value
        firstTime = sample.timestamp
        last = sample.value
        lastTime = sample.timestamp
        onlineCount = sample.value > 0 ? 1 : 0
        onlineMinutes = onlineCount
    }

    /// Adds a sample later than every sample so far (samples arrive in time order), counting
    /// its minute as ONLINE unless an earlier sample of the same minute already did.
    public mutating func add(_ sample: FieldSample, onlineMinuteCounted: Bool) {
        let minuteAlreadyOnline = onlineMinuteCounted
        merge(FieldRollup(sample: sample))
        if minuteAlreadyOnline, sample.value > 0 { onlineMinutes -= 1 }
    }

    /// Combines two rollups of disjoint sample sets (commutative and associative).
    public mutating func merge(_ other: FieldRollup) {
        count += other.count
        sum += other.sum
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        if other.firstTime < firstTime { (first, firstTime) = (other.first, other.firstTime) }
        if other.lastTime >= lastTime { (last, lastTime) = (other.last, other.lastTime) }
        onlineCount += other.onlineCount
        onlineMinutes += other.onlineMinutes
    }

    public var average: Double { count == 0 ? 0 : sum / Double(count) }
}

/// The sealed rollups of one series for one day, one ``FieldRollup`` per field: the value of the
/// `day` column family. Written once a day can no longer change (its end is older than
/// `--max-sample-age`), as the merge of the day's samples; kept for `--retention-day`.
///
/// Each record also carries the series' **running totals**: per field ever sealed for the series,
/// the count and sum of every sealed day up to and including this one (prefix sums). The totals of
/// the days `a...b` are then the running totals of the series' last record on or before `b` minus
/// those of its first record on or after `a`, plus that record's own day: two reads a series,
/// whatever the retained history (``TimeSeriesStore/totals(series:fields:now:)``).
///
/// Encoding (docs/format.md): `0x03 ‖ count u16 BE ‖ count × (field u16 BE ‖ count u64 ‖ sum f64 ‖
/// min f64 ‖ max f64 ‖ first f64 ‖ firstTime i64 ‖ last f64 ‖ lastTime i64 ‖ online u64 ‖
/// onlineMinutes u64) ‖ running u16 BE ‖ running × (field u16 BE ‖ count u64 ‖ sum f64)`, all
/// big-endian, fields ascending. Versions 1 (without `onlineMinutes`, taken as the ONLINE samples,
/// at most 1,440) and 2 (without running totals) are still read; the store rewrites them at open.
public struct DayRecord: Equatable, Sendable {
    public static let formatVersion: UInt8 = 3
    static let entrySize = 2 + 10 * 8
    static let version1EntrySize = 2 + 9 * 8
    static let runningEntrySize = 2 + 2 * 8

    /// Rollups by field, ascending by field id.
    public var fields: [(field: UInt16, rollup: FieldRollup)]
    /// Running totals by field, ascending by field id: every field the series had on a sealed day
    /// up to this one. `nil` for a record of version 1 or 2, which has none.
    public var running: [(field: UInt16, total: FieldTotal)]?

    /// A `DayRecord` from its parts.
    public init(fields: [(field: UInt16, rollup: FieldRollup)], running: [(field: UInt16, total: FieldTotal)]? = nil) {
        self.fields = fields.sorted { $0.field < $1.field }
        self.running = running?.sorted { $0.field < $1.field }
    }

    /// This day's record after `previous`, the series' record of its last sealed day before
    /// (`nil` when there is none): its running totals are the previous ones plus this day's.
    public init(fields: [(field: UInt16, rollup: FieldRollup)], after previous: DayRecord?) {
        self.init(fields: fields, continuing: previous?.running)
    }

    /// This day's record after the running totals `previous` of the series' last sealed day.
    init(fields: [(field: UInt16, rollup: FieldRollup)], continuing previous: [(field: UInt16, total: FieldTotal)]?) {
        var totals: [UInt16: FieldTotal] = [:]
        for (field, total) in previous ?? [] { totals[field] = total }
        for (field, rollup) in fields { totals[field, default: FieldTotal()].add(rollup) }
        self.init(fields: fields, running: totals.map { (field: $0.key, total: $0.value) })
    }

    public static func == (lhs: DayRecord, rhs: DayRecord) -> Bool {
        guard lhs.fields.count == rhs.fields.count, zip(lhs.fields, rhs.fields).allSatisfy({ $0.field == $1.field && $0.rollup == $1.rollup }) else {
            return false
        }
        // A record without running totals is written with none: `nil` and empty are one.
        let (left, right) = (lhs.running ?? [], rhs.running ?? [])
        return left.count == right.count && zip(left, right).allSatisfy { $0.field == $1.field && $0.total == $1.total }
    }

    /// The rollup of `field` that day, if it had samples.
    public func rollup(field: UInt16) -> FieldRollup? {
        fields.first { $0.field == field }?.rollup
    }

    /// The running total of `field` through this day (zero when the series never had it).
    public func runningTotal(field: UInt16) -> FieldTotal {
        running?.first { $0.field == field }?.total ?? FieldTotal()
    }

    /// The running total of `field` through the day before this one.
    public func runningTotal(before field: UInt16) -> FieldTotal {
        var total = runningTotal(field: field)
        if let today = rollup(field: field) { total.subtract(FieldTotal(today)) }
        return total
    }

    /// The rollup of `field` in the encoded record `bytes` without decoding the rest (a range
    /// read touches every record once): `nil` when the field is absent or the bytes are not a
    /// record.
    public static func rollup(field: UInt16, in bytes: UnsafeRawBufferPointer) -> FieldRollup? {
        guard bytes.count >= 3, (1...formatVersion).contains(bytes[0]) else { return nil }
        let version = bytes[0]
        let entrySize = version == 1 ? version1EntrySize : Self.entrySize
        let count = Int(readBigEndian(UInt16.self, bytes, at: 1))
        guard bytes.count >= 3 + count * entrySize else { return nil }
        var offset = 3
        for _ in 0..<count {
            let here = readBigEndian(UInt16.self, bytes, at: offset)
            if here == field {
                func word(_ index: Int) -> UInt64 { readBigEndian(UInt64.self, bytes, at: offset + 2 + index * 8) }
                return FieldRollup(
                    count: word(0), sum: Double(bitPattern: word(1)), min: Double(bitPattern: word(2)), max: Double(bitPattern: word(3)),
                    first: Double(bitPattern: word(4)), firstTime: Int64(bitPattern: word(5)),
                    last: Double(bitPattern: word(6)), lastTime: Int64(bitPattern: word(7)), onlineCount: word(8),
                    onlineMinutes: version == 1 ? min(word(8), 1440) : word(9))
            }
            // Fields ascend: past it, it is not there.
            if here > field { return nil }
            offset += entrySize
        }
        return nil
    }

    /// The record's bytes (format version first), as stored in the `day` column family. A record
    /// without running totals is written with none.
    public func encoded() -> [UInt8] {
        let running = (self.running ?? []).prefix(Int(UInt16.max))
        var bytes: [UInt8] = []
        bytes.reserveCapacity(5 + fields.count * Self.entrySize + running.count * Self.runningEntrySize)
        bytes.append(Self.formatVersion)
        appendBigEndian(UInt16(clamping: fields.count), to: &bytes)
        for (field, rollup) in fields.prefix(Int(UInt16.max)) {
            appendBigEndian(field, to: &bytes)
            appendBigEndian(rollup.count, to: &bytes)
            appendBigEndian(rollup.sum.bitPattern, to: &bytes)
            appendBigEndian(rollup.min.bitPattern, to: &bytes)
            appendBigEndian(rollup.max.bitPattern, to: &bytes)
            appendBigEndian(rollup.first.bitPattern, to: &bytes)
            appendBigEndian(UInt64(bitPattern: rollup.firstTime), to: &bytes)
            appendBigEndian(rollup.last.bitPattern, to: &bytes)
            appendBigEndian(UInt64(bitPattern: rollup.lastTime), to: &bytes)
            appendBigEndian(rollup.onlineCount, to: &bytes)
            appendBigEndian(rollup.onlineMinutes, to: &bytes)
        }
        appendBigEndian(UInt16(running.count), to: &bytes)
        FieldTotal.append(running, to: &bytes)
        return bytes
    }

    /// Decodes a record; `nil` for a wrong version or length.
    public init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 3, (1...Self.formatVersion).contains(bytes[0]) else { return nil }
        let version = bytes[0]
        let entrySize = version == 1 ? Self.version1EntrySize : Self.entrySize
        let count = Int(readBigEndian(UInt16.self, bytes, at: 1))
        let fieldsEnd = 3 + count * entrySize
        if version < 3 {
            guard bytes.count == fieldsEnd else { return nil }
        } else {
            guard bytes.count >= fieldsEnd + 2 else { return nil }
            let running = Int(readBigEndian(UInt16.self, bytes, at: fieldsEnd))
            guard bytes.count == fieldsEnd + 2 + running * Self.runningEntrySize else { return nil }
        }
        var fields: [(field: UInt16, rollup: FieldRollup)] = []
        fields.reserveCapacity(count)
        var offset = 3
        for _ in 0..<count {
            func word(_ index: Int) -> UInt64 { readBigEndian(UInt64.self, bytes, at: offset + 2 + index * 8) }
            let rollup = FieldRollup(
                count: word(0), sum: Double(bitPattern: word(1)), min: Double(bitPattern: word(2)), max: Double(bitPattern: word(3)),
                first: Double(bitPattern: word(4)), firstTime: Int64(bitPattern: word(5)),
                last: Double(bitPattern: word(6)), lastTime: Int64(bitPattern: word(7)), onlineCount: word(8),
                onlineMinutes: version == 1 ? min(word(8), 1440) : word(9))
            fields.append((readBigEndian(UInt16.self, bytes, at: offset), rollup))
            offset += entrySize
        }
        self.fields = fields
        guard version >= 3 else {
            running = nil
            return
        }
        let runningCount = Int(readBigEndian(UInt16.self, bytes, at: offset))
        running = FieldTotal.decode(runningCount, from: bytes, at: offset + 2)
    }

    /// A `DayRecord` from its parts.
    public init?(decoding bytes: [UInt8]) {
        guard let record = bytes.withUnsafeBytes({ DayRecord(decoding: $0) }) else { return nil }
        self = record
    }
}

/// The count and sum of a field's samples over a span of days: what all-time totals add up.
public struct FieldTotal: Equatable, Sendable {
    public var count: UInt64
    public var sum: Double

    /// A `FieldTotal` from its parts (zero by default).
    public init(count: UInt64 = 0, sum: Double = 0) {
        self.count = count
        self.sum = sum
    }

    /// Appends `entries` as `field u16 BE ‖ count u64 BE ‖ sum f64 BE` each (``DayRecord/runningEntrySize``
    /// bytes), the running totals of day records and heads.
    static func append(_ entries: some Sequence<(field: UInt16, total: FieldTotal)>, to bytes: inout [UInt8]) {
        for (field, total) in entries {
            appendBigEndian(field, to: &bytes)
            appendBigEndian(total.count, to: &bytes)
            appendBigEndian(total.sum.bitPattern, to: &bytes)
        }
    }

    /// `count` entries written by ``append(_:to:)`` from `offset` on; the caller checked the length.
    static func decode(_ count: Int, from bytes: UnsafeRawBufferPointer, at offset: Int) -> [(field: UInt16, total: FieldTotal)] {
        var entries: [(field: UInt16, total: FieldTotal)] = []
        entries.reserveCapacity(count)
        var offset = offset
        for _ in 0..<count {
            entries.append((readBigEndian(UInt16.self, bytes, at: offset),
                            FieldTotal(count: readBigEndian(UInt64.self, bytes, at: offset + 2),
                                       sum: Double(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 10)))))
            offset += DayRecord.runningEntrySize
        }
        return entries
    }

    /// The count and sum of `rollup`.
    public init(_ rollup: FieldRollup) {
        self.init(count: rollup.count, sum: rollup.sum)
    }

    /// Adds the samples of `rollup`.
    public mutating func add(_ rollup: FieldRollup) {
        count &+= rollup.count
        sum += rollup.sum
    }

    /// Adds `other`.
    public mutating func add(_ other: FieldTotal) {
        count &+= other.count
        sum += other.sum
    }

    /// Takes away `other` (a prefix of the same running total; wrapping, never trapping on
    /// damaged records).
    public mutating func subtract(_ other: FieldTotal) {
        count &-= other.count
        sum -= other.sum
    }
}

@inline(__always)
func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
}

@inline(__always)
func readBigEndian<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
    T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
}

import Foundation
import RocksDB
import Synchronization
import TimeSeries

/// The day rollups of sealed days read from the cluster TSDB, kept in the replica's own RocksDB
/// (`<data-dir>/stats-cache`): the split-by-day cache of Thanos' and Cortex's query frontends,
/// with the embedded store's day records. A day is sealed once no replica can still accept a
/// sample of it (``PrometheusRollupSource/Settings/sealAfter`` after its end); from then on its
/// rollups are read here and only the open days are asked of the TSDB. Each record carries the
/// series' running totals (``DayRecord``), so all-time totals read two records a series whatever
/// the history, as the embedded store does.
///
/// A cache only: deleting the directory (or a day being invalidated by a late delivery,
/// ``invalidate(fromDay:)``) makes the replica read those days from the TSDB again.
///
/// Series are named by their measurement and canonical labels, fields by name, each given a
/// small id here; coverage is kept per group (an organization's measurement): every day from
/// `begin` through `through` is in the cache for every series of the group.
public final class SealedDayCache: @unchecked Sendable {
    /// Days a group's cache holds, inclusive.
    public struct Coverage: Equatable, Sendable {
        public var begin: UInt32
        public var through: UInt32
    }

    private struct State {
        var seriesIDs: [String: UInt64] = [:]
        var nextSeries: UInt64 = 1
        var fieldIDs: [String: UInt16] = [:]
        var coverage: [String: Coverage] = [:]
        /// The cached series of each group.
        var members: [String: [UInt64]] = [:]
    }

    private let database: Database
    private let meta: ColumnFamily
    private let days: ColumnFamily
    private let state = Mutex(State())

    private static let seriesPrefix: UInt8 = 0x73 // "s"
    private static let fieldPrefix: UInt8 = 0x66 // "f"
    private static let coveragePrefix: UInt8 = 0x74 // "t"

    /// Opens (or creates) the cache at `path`.
    public init(path: String) throws {
        var options = DatabaseOptions()
        options.blockCacheBytes = 32 << 20
        options.enableStatistics = false
        var dayFamily = ColumnFamilyDescriptor(name: "days")
        dayFamily.blockBytes = 16 << 10
        dayFamily.bottommostCompression = .lz4
        database = try Database.open(path: path, options: options, columnFamilies: [ColumnFamilyDescriptor(name: "meta"), dayFamily])
        meta = try database.columnFamily("meta")
        days = try database.columnFamily("days")
        var loaded = State()
        try database.scan(meta) { key, value in
            guard let kind = key.first else { return true }
            let name = String(decoding: key.dropFirst(), as: UTF8.self)
            switch kind {
            case Self.seriesPrefix where value.count == 8:
                let id = readUInt64(value)
                loaded.seriesIDs[name] = id
                loaded.nextSeries = max(loaded.nextSeries, id + 1)
                // The group is the name up to the second separator (organization, measurement).
                let parts = name.split(separator: "\u{0}", maxSplits: 2, omittingEmptySubsequences: false)
                if parts.count == 3 { loaded.members[parts[0] + "\u{0}" + parts[1], default: []].append(id) }
            case Self.fieldPrefix where value.count == 2:
                loaded.fieldIDs[name] = UInt16(value[0]) << 8 | UInt16(value[1])
            case Self.coveragePrefix where value.count == 8:
                loaded.coverage[name] = Coverage(begin: readUInt32(value, at: 0), through: readUInt32(value, at: 4))
            default:
                break
            }
            return true
        }
        state.withLock { $0 = loaded }
    }

    deinit { database.close() }

    /// Closes the database (also done when the cache goes away).
    public func close() { database.close() }

    /// The id of the series `canonical` of `group` (organization and measurement), made on first use.
    public func seriesID(group: String, canonical: String) throws -> UInt64 {
        let name = group + "\u{0}" + canonical
        if let known = state.withLock({ $0.seriesIDs[name] }) { return known }
        return try state.withLock { state in
            if let known = state.seriesIDs[name] { return known }
            let id = state.nextSeries
            try database.put([Self.seriesPrefix] + Array(name.utf8), bigEndian(id), in: meta)
            state.nextSeries += 1
            state.seriesIDs[name] = id
            state.members[group, default: []].append(id)
            return id
        }
    }

    /// The id of the series `canonical` of `group`, if the cache has seen it.
    public func existingSeriesID(group: String, canonical: String) -> UInt64? {
        state.withLock { $0.seriesIDs[group + "\u{0}" + canonical] }
    }

    /// The id of field `name`, made on first use (`nil` past 65,535 fields).
    public func fieldID(_ name: String) throws -> UInt16? {
        if let known = state.withLock({ $0.fieldIDs[name] }) { return known }
        return try state.withLock { state in
            if let known = state.fieldIDs[name] { return known }
            guard state.fieldIDs.count < Int(UInt16.max) else { return nil }
            let id = UInt16(state.fieldIDs.count + 1)
            try database.put([Self.fieldPrefix] + Array(name.utf8), [UInt8(id >> 8), UInt8(id & 0xFF)], in: meta)
            state.fieldIDs[name] = id
            return id
        }
    }

    private static let lateCheckKey: [UInt8] = [0x63] // "c"

    /// When late-delivery marks were last looked for (Unix seconds), across restarts.
    public func lateCheck() -> TimeInterval? {
        guard let bytes = try? database.get(Self.lateCheckKey, in: meta), bytes.count == 8 else { return nil }
        return Double(bitPattern: bytes.reduce(0) { $0 << 8 | UInt64($1) })
    }

    public func setLateCheck(_ time: TimeInterval) throws {
        try database.put(Self.lateCheckKey, bigEndian(time.bitPattern), in: meta)
    }

    /// The days `group` holds, or `nil`.
    public func coverage(_ group: String) -> Coverage? {
        state.withLock { $0.coverage[group] }
    }

    /// Adds the rollups of the days after the group's coverage through `through` (each series'
    /// days ascending, all after its records so far) and moves the coverage there; the first
    /// fill of a group begins it at `begin`.
    public func append(group: String, begin: UInt32, through: UInt32, rollups: [UInt64: [(day: UInt32, fields: [(field: UInt16, rollup: FieldRollup)])]]) throws {
        let batch = WriteBatch()
        for (series, perDay) in rollups {
            guard let first = perDay.first else { continue }
            var previous = try record(series: series, atOrBefore: first.day &- 1)?.record
            for (day, fields) in perDay where !fields.isEmpty {
                let record = DayRecord(fields: fields, after: previous)
                batch.put(Self.key(series, day), record.encoded(), in: days)
                previous = record
            }
        }
        let covered = Coverage(begin: coverage(group)?.begin ?? begin, through: through)
        batch.put([Self.coveragePrefix] + Array(group.utf8), bigEndian(covered.begin) + bigEndian(covered.through), in: meta)
        try database.write(batch)
        state.withLock { $0.coverage[group] = covered }
    }

    /// Forgets every cached day from `day` on in every group (a late delivery changed it), and
    /// a group's whole cache when nothing before `day` remains.
    public func invalidate(fromDay day: UInt32) throws {
        let (coverage, members) = state.withLock { ($0.coverage, $0.members) }
        for (group, covered) in coverage where covered.through >= day {
            try invalidate(group: group, fromDay: day, covered: covered, members: members[group] ?? [])
        }
    }

    /// Forgets `group`'s cache from `day` on.
    public func invalidate(group: String, fromDay day: UInt32) throws {
        let (covered, members) = state.withLock { ($0.coverage[group], $0.members[group] ?? []) }
        guard let covered else { return }
        try invalidate(group: group, fromDay: day, covered: covered, members: members)
    }

    private func invalidate(group: String, fromDay day: UInt32, covered: Coverage, members: [UInt64]) throws {
        let batch = WriteBatch()
        for series in members { batch.deleteRange(from: Self.key(series, day), to: Self.key(series + 1, 0), in: days) }
        let coverageKey = [Self.coveragePrefix] + Array(group.utf8)
        let kept: Coverage? = day > covered.begin ? Coverage(begin: covered.begin, through: min(covered.through, day - 1)) : nil
        if let kept {
            batch.put(coverageKey, bigEndian(kept.begin) + bigEndian(kept.through), in: meta)
        } else {
            batch.delete(coverageKey, in: meta)
        }
        try database.write(batch)
        state.withLock { $0.coverage[group] = kept }
    }

    /// The series' newest record on or before `day`, with its day.
    func record(series: UInt64, atOrBefore day: UInt32) throws -> (day: UInt32, record: DayRecord)? {
        try record(series: series, atOrBefore: day, using: database.makeIterator(days))
    }

    /// ``record(series:atOrBefore:)`` with an iterator over the whole `days` family, reused
    /// across series (one iterator for a batch instead of one a read).
    private func record(series: UInt64, atOrBefore day: UInt32, using iterator: Iterator) throws -> (day: UInt32, record: DayRecord)? {
        iterator.seek(forPrevious: Self.key(series, day))
        guard iterator.isValid else {
            try iterator.checkError()
            return nil
        }
        let found = iterator.withKey { key -> UInt32? in
            guard key.count == 12, readUInt64(key) == series else { return nil }
            return readUInt32(key, at: 8)
        }
        guard let found, let record = iterator.withValue({ DayRecord(decoding: $0) }) else { return nil }
        return (found, record)
    }

    /// Count and sum of each of `fields` over the days `from...through` of `series`: the
    /// difference of two running totals.
    public func totals(series: UInt64, fields: [UInt16], from: UInt32, through: UInt32) throws -> [FieldTotal] {
        try totals(series: [series], fields: fields, from: from, through: through)[0]
    }

    /// ``totals(series:fields:from:through:)`` of each of `series` (`nil`: none, zeros), with
    /// one iterator.
    public func totals(series: [UInt64?], fields: [UInt16], from: UInt32, through: UInt32) throws -> [[FieldTotal]] {
        let zeros = [FieldTotal](repeating: FieldTotal(), count: fields.count)
        guard through >= from else { return Array(repeating: zeros, count: series.count) }
        let iterator = try database.makeIterator(days)
        return try series.map { id in
            guard let id, let last = try record(series: id, atOrBefore: through, using: iterator) else { return zeros }
            let before = from == 0 ? nil : try record(series: id, atOrBefore: from - 1, using: iterator)
            return fields.map { field in
                var total = last.record.runningTotal(field: field)
                if let before { total.subtract(before.record.runningTotal(field: field)) }
                return total
            }
        }
    }

    /// The rollups of each of `fields` of `series` per day of `from...through`, in day order
    /// (days without samples absent).
    public func rows(series: UInt64, fields: [UInt16], from: UInt32, through: UInt32) throws -> [[TimeSeriesStore.RollupRow]] {
        var out = [[TimeSeriesStore.RollupRow]](repeating: [], count: fields.count)
        guard through >= from else { return out }
        try database.scan(days, lowerBound: Self.key(series, from), upperBound: Self.key(series, through) + [0]) { key, value in
            guard key.count == 12 else { return true }
            let day = Int64(readUInt32(key, at: 8))
            for (index, field) in fields.enumerated() {
                if let rollup = DayRecord.rollup(field: field, in: value) {
                    out[index].append(TimeSeriesStore.RollupRow(start: day * 86_400, rollup: rollup))
                }
            }
            return true
        }
        return out
    }

    static func key(_ series: UInt64, _ day: UInt32) -> [UInt8] {
        bigEndian(series) + bigEndian(day)
    }
}

private func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
    withUnsafeBytes(of: value.bigEndian) { Array($0) }
}

private func readUInt64(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
}

private func readUInt32(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt32 {
    bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
}

import CollectorModel
import Foundation
import RocksDB

/// All-time totals from the running totals of day records (``DayRecord/running``): the sealed
/// part of a series' retained history costs two reads whatever its length; the open days (at
/// most `--max-sample-age` and a day) come from their blocks and the pending samples.
extension TimeSeriesStore {
    /// The oldest day kept at `now`: the day records of older days are past `--retention-day`
    /// (the retention filter drops them at its next compaction; totals never count them).
    public func firstRetainedDay(now: Date) -> UInt32 {
        let cutoff = now.timeIntervalSince1970 - settings.dayRetention
        guard cutoff > 0 else { return 0 }
        return UInt32(clamping: Int64(saturating: cutoff) / 86_400)
    }

    /// Per series of `ids`, per field of `fields`: the count and sum of every retained sample
    /// (days from ``firstRetainedDay(now:)`` on, today and the future-skew window included).
    ///
    /// Sealed days: the running totals of the series' last sealed record minus those of its
    /// first retained record before that record's own day, so the cost does not grow with the
    /// history. Open days: their blocks and pending samples, as day rollups.
    public func totals(series ids: [UInt64], fields: [UInt16], now: Date) throws -> [[FieldTotal]] {
        var out = [[FieldTotal]](repeating: [FieldTotal](repeating: FieldTotal(), count: fields.count), count: ids.count)
        guard !ids.isEmpty, !fields.isEmpty else { return out }
        let firstDay = firstRetainedDay(now: now)
        var openFrom = Int64(firstDay)
        if let sealed = sealedThroughDay, sealed >= firstDay {
            openFrom = Int64(sealed) + 1
            let iterator = try database.makeIterator(days)
            var key = [UInt8](repeating: 0, count: 12)
            /// The day of the record the iterator is on when it belongs to `id`.
            func day(of id: UInt64) -> UInt32? {
                guard iterator.isValid else { return nil }
                return iterator.withKey { key in
                    key.count == 12 && readBigEndian(UInt64.self, key, at: 0) == id ? readBigEndian(UInt32.self, key, at: 8) : nil
                }
            }
            for (offset, id) in ids.enumerated() {
                RollupKey(series: id, interval: firstDay).write(into: &key)
                iterator.seek(to: key)
                guard let first = day(of: id), first <= sealed, let firstRecord = iterator.withValue({ DayRecord(decoding: $0) }) else { continue }
                RollupKey(series: id, interval: sealed).write(into: &key)
                iterator.seek(forPrevious: key)
                guard let last = day(of: id), last >= first, let lastRecord = iterator.withValue({ DayRecord(decoding: $0) }) else { continue }
                for (index, field) in fields.enumerated() {
                    var total = lastRecord.runningTotal(field: field)
                    total.subtract(firstRecord.runningTotal(before: field))
                    out[offset][index] = total
                }
            }
            try iterator.checkError()
        }
        let start = openFrom * 86_400
        let end = UnixTime(clamping: now).adding(seconds: 86_400).seconds
        guard end > start else { return out }
        for (offset, id) in ids.enumerated() {
            let rows = try rollups(series: id, fields: fields, start: start, end: end, perDay: true)
            for (index, perField) in rows.enumerated() {
                for row in perField { out[offset][index].add(row.rollup) }
            }
        }
        return out
    }

    /// `series` column family key set once every day record carries running totals.
    static let runningTotalsKey = Array("s/day_running_totals".utf8)

    /// Gives every day record running totals, once per database (format 3 → 4): one pass over
    /// the `day` family in key order (series by series, days ascending), each record rewritten
    /// with the running totals of its series so far. Idempotent: a crash midway recomputes the
    /// same records at the next open. Returns the records rewritten.
    @discardableResult
    static func addRunningTotals(_ database: Database, days: ColumnFamily, series seriesFamily: ColumnFamily) throws -> Int {
        guard try database.get(runningTotalsKey, in: seriesFamily) == nil else { return 0 }
        var rewritten = 0
        var writer = ChunkedWriter(database: database)
        var previous: (series: UInt64, record: DayRecord)?
        try database.scan(days) { key, value in
            guard key.count == 12, let record = DayRecord(decoding: value) else { return true }
            let series = readBigEndian(UInt64.self, key, at: 0)
            let updated = DayRecord(fields: record.fields, after: previous?.series == series ? previous?.record : nil)
            writer.batch.put(Array(key), updated.encoded(), in: days)
            previous = (series, updated)
            rewritten += 1
            try writer.added()
            return true
        }
        writer.batch.put(runningTotalsKey, [1], in: seriesFamily)
        try writer.finish()
        return rewritten
    }
}

/// The record of each series' last sealed day before a given day, read from the `day` family
/// through one iterator (a snapshot of what was committed when it was made).
struct PreviousDayRecords {
    private let iterator: Iterator
    private var key = [UInt8](repeating: 0, count: 12)

    init(database: Database, days: ColumnFamily) throws {
        iterator = try database.makeIterator(days)
    }

    /// The record of `series` with the latest day before `day`, or `nil`.
    mutating func record(series: UInt64, before day: UInt32) throws -> DayRecord? {
        guard day > 0 else { return nil }
        RollupKey(series: series, interval: day - 1).write(into: &key)
        iterator.seek(forPrevious: key)
        guard iterator.isValid else {
            try iterator.checkError()
            return nil
        }
        let same = iterator.withKey { $0.count == 12 && readBigEndian(UInt64.self, $0, at: 0) == series }
        return same ? iterator.withValue { DayRecord(decoding: $0) } : nil
    }
}

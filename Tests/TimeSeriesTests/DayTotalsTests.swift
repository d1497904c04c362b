import CollectorTesting
import Foundation
import RocksDB
import Synchronization
import Testing
@testable import TimeSeries

/// All-time totals from the running totals of day records: equal to the sum of the retained day
/// rollups before and after sealing, across restarts, with late samples inside the window, at the
/// retention edge (before and after the retention compaction), and after the format upgrade that
/// adds running totals to older records.
@Suite("Time-series store: all-time totals from running totals")
struct DayTotalsTests {
    /// 2026-04-19T12:00:00Z: forty days after the first day of `TimeSeriesStoreTests`.
    static let now = Date(timeIntervalSince1970: TimeInterval(TimeSeriesStoreTests.dayStart + 40 * 86_400 + 43_200))
    static let fieldNames = ["upl_bytes", "dwl_bytes", "requests", "latency_ms"]

    /// A store in `directory` whose retention filters measure from `clock`.
    static func open(_ directory: TemporaryDirectory, maxSampleAge: TimeInterval, dayRetention: TimeInterval = TimeSeriesStore.defaultDayRetention,
                     clock: @escaping @Sendable () -> Date = { DayTotalsTests.now }) throws -> (Database, TimeSeriesStore) {
        var settings = TimeSeriesSettings()
        settings.maxSampleAge = maxSampleAge
        settings.dayRetention = dayRetention
        let db = try Database.open(path: directory.appending("db"),
                                   columnFamilies: TimeSeriesStore.columnFamilies(minuteRetention: max(60 * 86_400, dayRetention), dayRetention: dayRetention, clock: clock))
        return (db, try TimeSeriesStore(database: db, settings: settings))
    }

    /// One report per series per day for the 40 days before `now`'s day and `now`'s day itself;
    /// series `k` skips the days where `(day + k) % 5 == 0`; `requests` only on even days,
    /// `latency_ms` in halves (sums stay exact in binary).
    static func backfill(_ store: TimeSeriesStore, series: Int, days: Int = 41) throws {
        var points: [SeriesPoint] = []
        for day in 0..<days {
            for k in 0..<series where (day + k) % 5 != 0 {
                var fields: [(name: String, value: Double)] = [("upl_bytes", Double(1000 * k + day)), ("dwl_bytes", Double(7 * day + k)),
                                                               ("latency_ms", Double(day % 9) + 0.5)]
                if day % 2 == 0 { fields.append(("requests", Double(day + 1))) }
                points.append(SeriesPoint(organization: "org", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b\(k)")],
                                          fields: fields, timestamp: (TimeSeriesStoreTests.dayStart + Int64(day) * 86_400 + 3600 + Int64(k)) * 1_000_000_000))
            }
        }
        let outcome = try store.write(points, now: now, sync: false)
        #expect(outcome.rejectedTotal == 0, "\(outcome)")
        try store.flush()
    }

    static func ids(_ store: TimeSeriesStore) -> [UInt64] {
        store.index.series(organization: "org", measurement: "bucket_traffic").map(\.id)
    }

    static func fields(_ store: TimeSeriesStore) throws -> [UInt16] {
        try fieldNames.map { try #require(store.index.existingFieldID($0)) }
    }

    /// The totals summed from the day rows of the days `firstDay` and later.
    static func expected(_ store: TimeSeriesStore, firstDay: UInt32) throws -> [[FieldTotal]] {
        let end = Int64(now.timeIntervalSince1970) + 86_400
        return try ids(store).map { id in
            try store.rollups(series: id, fields: try fields(store), start: Int64(firstDay) * 86_400, end: end, perDay: true).map { rows in
                rows.reduce(into: FieldTotal()) { $0.add($1.rollup) }
            }
        }
    }

    @Test func totalsEqualTheRetainedDaysBeforeAndAfterSealingAndRestarts() throws {
        let directory = TemporaryDirectory(prefix: "ts-totals")
        // Backfilled with a wide sample-age window: every day still open, read from blocks.
        var (db, store) = try Self.open(directory, maxSampleAge: 50 * 86_400)
        try Self.backfill(store, series: 12)
        let open = try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now)
        #expect(open == (try Self.expected(store, firstDay: 0)))
        #expect(open.flatMap { $0 }.contains { $0.count > 0 })
        #expect(try store.sealDays(now: Self.now) == 0)
        db.close()

        // Restarted with the default window: every day before the last two is sealed.
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        #expect(try store.sealDays(now: Self.now) > 12 * 25)
        let sealed = try #require(store.sealedThroughDay)
        #expect(sealed == UInt32(Self.now.timeIntervalSince1970 / 86_400) - 3)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == open)

        // A late sample inside the window (yesterday) counts at once, and after a flush.
        let late = SeriesPoint(organization: "org", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b3")],
                               fields: [(name: "upl_bytes", value: 5_000_000)], timestamp: (Int64(Self.now.timeIntervalSince1970) - 86_400) * 1_000_000_000)
        #expect(try store.write([late], now: Self.now, sync: false).stored == 1)
        let b3 = store.index.series(organization: "org", measurement: "bucket_traffic").first { $0.key.tags.first?.value == "b3" }?.id
        let position = try #require(Self.ids(store).firstIndex { $0 == b3 })
        var withLate = open
        withLate[position][0].add(FieldTotal(count: 1, sum: 5_000_000))
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == withLate)
        try store.flush()
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == withLate)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == (try Self.expected(store, firstDay: 0)))

        // Sealing the late sample's day later keeps the totals; so does a restart.
        let dayLater = Self.now.addingTimeInterval(2 * 86_400)
        #expect(try store.sealDays(now: dayLater) > 0)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: dayLater) == withLate)
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: dayLater) == withLate)
        db.close()
    }

    @Test func totalsCountTheDaysInsideTheRetentionAtQueryTimeAlsoAfterCompaction() throws {
        let directory = TemporaryDirectory(prefix: "ts-totals-retention")
        var (db, store) = try Self.open(directory, maxSampleAge: 50 * 86_400)
        try Self.backfill(store, series: 9)
        db.close()
        // Twenty days of day retention: the days before are not counted, whether or not a
        // compaction has dropped their records yet.
        let clock = Mutex(Self.now)
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600, dayRetention: 20 * 86_400, clock: { clock.withLock { $0 } })
        defer { db.close() }
        // A series that reports once, yesterday (it is sealed later, then leaves the retention).
        let silent = SeriesPoint(organization: "org", measurement: "bucket_traffic", tags: [(key: "bucket", value: "silent")],
                                 fields: [(name: "upl_bytes", value: 9)], timestamp: (Int64(Self.now.timeIntervalSince1970) - 86_400) * 1_000_000_000)
        #expect(try store.write([silent], now: Self.now, sync: false).stored == 1)
        try store.flush()
        #expect(try store.sealDays(now: Self.now) > 0)
        let firstDay = store.firstRetainedDay(now: Self.now)
        #expect(firstDay == UInt32(Self.now.timeIntervalSince1970 / 86_400) - 20)
        let retained = try Self.expected(store, firstDay: firstDay)
        let all = try Self.expected(store, firstDay: 0)
        #expect(retained != all)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == retained)
        // The retention compaction drops the older records: same totals, from fewer records.
        try store.enforceRetention()
        #expect(try Self.expected(store, firstDay: 0) == retained)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == retained)
        // Five days on (nothing new written), five more days have left the retention.
        let later = Self.now.addingTimeInterval(5 * 86_400)
        clock.withLock { $0 = later }
        _ = try store.sealDays(now: later)
        let fiveLess = try Self.expected(store, firstDay: store.firstRetainedDay(now: later))
        #expect(fiveLess != retained)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: later) == fiveLess)
        try store.enforceRetention()
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: later) == fiveLess)
        // A series silent for longer than the retention: totals zero, and its head is dropped
        // with its records.
        let silentID = try #require(store.index.series(organization: "org", measurement: "bucket_traffic").first { $0.key.tags.first?.value == "silent" }?.id)
        let upload = try #require(store.index.existingFieldID("upl_bytes"))
        #expect(try store.totals(series: [silentID], fields: [upload], now: later) == [[FieldTotal(count: 1, sum: 9)]])
        let muchLater = later.addingTimeInterval(25 * 86_400)
        _ = try store.sealDays(now: muchLater)
        #expect(try db.get(RunningTotalsHead.key(series: silentID), in: db.columnFamily("totals")) != nil)
        clock.withLock { $0 = muchLater }
        try store.enforceRetention()
        #expect(try store.totals(series: [silentID], fields: [upload], now: muchLater) == [[FieldTotal()]])
        #expect(try db.get(RunningTotalsHead.key(series: silentID), in: db.columnFamily("totals")) == nil)
    }

    @Test func dayRecordsWithoutRunningTotalsAreUpgradedAtOpen() throws {
        let directory = TemporaryDirectory(prefix: "ts-totals-upgrade")
        var (db, store) = try Self.open(directory, maxSampleAge: 50 * 86_400)
        try Self.backfill(store, series: 7)
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        #expect(try store.sealDays(now: Self.now) > 0)
        let totals = try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now)
        // Rewrite every day record as version 2 (no running totals), as a format 3 binary left
        // them, and forget that they were upgraded.
        let days = try db.columnFamily("day")
        var records: [([UInt8], [UInt8])] = []
        try db.scan(days) { key, value in
            records.append((Array(key), Array(value)))
            return true
        }
        #expect(records.count > 7 * 25)
        // A format 3 directory has no heads.
        for key in try Self.dayFamily(db, "totals").keys { try db.delete(key, in: db.columnFamily("totals")) }
        for (key, value) in records {
            let record = try #require(DayRecord(decoding: value))
            var version2 = Array(DayRecord(fields: record.fields).encoded().dropLast(2))
            version2[0] = 2
            #expect(DayRecord(decoding: version2)?.running == nil)
            try db.put(key, version2, in: days)
        }
        try db.delete(TimeSeriesStore.runningTotalsKey, in: db.columnFamily("series"))
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        defer { db.close() }
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == totals)
        try db.scan(db.columnFamily("day")) { _, value in
            #expect(DayRecord(decoding: value)?.running != nil)
            return true
        }
        let heads = try Self.dayFamily(db, "totals").values.compactMap { RunningTotalsHead(decoding: $0) }
        #expect(heads.count == 7)
        #expect(heads.allSatisfy { $0.chainStart == UInt32(TimeSeriesStoreTests.dayStart / 86_400) || $0.chainStart == UInt32(TimeSeriesStoreTests.dayStart / 86_400) + 1 })
    }

    /// Every key and value of a column family (`day` by default).
    static func dayFamily(_ db: Database, _ name: String = "day") throws -> [[UInt8]: [UInt8]] {
        var out: [[UInt8]: [UInt8]] = [:]
        try db.scan(db.columnFamily(name)) { key, value in
            out[Array(key)] = Array(value)
            return true
        }
        return out
    }

    @Test func sealingAgainAfterACrashWritesTheSameRecordsAndHeads() throws {
        let directory = TemporaryDirectory(prefix: "ts-totals-reseal")
        var (db, store) = try Self.open(directory, maxSampleAge: 50 * 86_400)
        try Self.backfill(store, series: 8)
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        #expect(try store.sealDays(now: Self.now) > 0)
        let sealed = try #require(store.sealedThroughDay)
        let records = try Self.dayFamily(db)
        let heads = try Self.dayFamily(db, "totals")
        #expect(heads.count == 8)
        // Each series skips one day in five: its last sealed day is one of the last two.
        #expect(heads.values.allSatisfy { RunningTotalsHead(decoding: $0).map { $0.lastDay == sealed || $0.lastDay == sealed - 1 } ?? false })
        let totals = try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now)
        // A crash after the records of ten more days were written, before the sealed-through key:
        // the next start seals those days again, over their records and the newer heads.
        try db.put(Array("s/days_sealed_through".utf8), withUnsafeBytes(of: (sealed - 10).bigEndian) { Array($0) }, in: db.columnFamily("series"))
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        defer { db.close() }
        #expect(store.sealedThroughDay == sealed - 10)
        #expect(try store.sealDays(now: Self.now) > 0)
        #expect(try Self.dayFamily(db) == records)
        #expect(try Self.dayFamily(db, "totals") == heads)
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == totals)
    }

    /// While a seal is being written, heads run ahead of the days reads take from records: the
    /// totals (and day rows) stay the same, the newer days read from their blocks.
    @Test func totalsStayTheSameWhileASealIsBeingWritten() throws {
        let directory = TemporaryDirectory(prefix: "ts-totals-sealing")
        var (db, store) = try Self.open(directory, maxSampleAge: 50 * 86_400)
        try Self.backfill(store, series: 6)
        db.close()
        (db, store) = try Self.open(directory, maxSampleAge: 48 * 3600)
        defer { db.close() }
        #expect(try store.sealDays(now: Self.now) > 0)
        let sealed = try #require(store.sealedThroughDay)
        let totals = try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now)
        let rows = try Self.expected(store, firstDay: 0)
        #expect(totals == rows)
        // As in the middle of the seal of the last ten days: records and heads written, reads
        // not yet moved on.
        store.state.withLock { $0.readableThroughDay = sealed - 10 }
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == totals)
        #expect(try Self.expected(store, firstDay: 0) == rows)
        // Before any day was readable from records.
        store.state.withLock { $0.readableThroughDay = nil }
        #expect(try store.totals(series: Self.ids(store), fields: Self.fields(store), now: Self.now) == totals)
    }

    @Test func runningTotalsRoundTripAndDamagedRecordsAreRefused() throws {
        let rollup = FieldRollup(sample: FieldSample(field: 3, timestamp: 5, value: 2))
        let first = DayRecord(fields: [(field: 3, rollup: rollup)], after: nil)
        let second = DayRecord(fields: [(field: 1, rollup: FieldRollup(sample: FieldSample(field: 1, timestamp: 9, value: 4)))], after: first)
        #expect(second.runningTotal(field: 3) == FieldTotal(count: 1, sum: 2))
        #expect(second.runningTotal(field: 1) == FieldTotal(count: 1, sum: 4))
        #expect(second.runningTotal(before: 1) == FieldTotal())
        #expect(second.runningTotal(before: 3) == FieldTotal(count: 1, sum: 2))
        let bytes = second.encoded()
        #expect(DayRecord(decoding: bytes) == second)
        #expect(DayRecord(decoding: Array(bytes.dropLast())) == nil)
        #expect(DayRecord(decoding: bytes + [0]) == nil)
        var future = bytes
        future[0] = DayRecord.formatVersion + 1
        #expect(DayRecord(decoding: future) == nil)
        // One field read in place equals the decoded record's; absent fields and damaged bytes
        // give none, and never trap.
        let both = DayRecord(fields: [(field: 1, rollup: FieldRollup(sample: FieldSample(field: 1, timestamp: 9, value: 4))),
                                      (field: 3, rollup: rollup)], after: second)
        let encoded = both.encoded()
        for field: UInt16 in [0, 1, 2, 3, 4] {
            #expect(encoded.withUnsafeBytes { DayRecord.rollup(field: field, in: $0) } == both.rollup(field: field))
        }
        for cut in 0..<encoded.count {
            _ = encoded[..<cut].withUnsafeBytes { DayRecord.rollup(field: 3, in: $0) }
        }
        #expect(encoded[..<20].withUnsafeBytes { DayRecord.rollup(field: 3, in: $0) } == nil)
    }
}

import CollectorTesting
import Foundation
import RocksDB
import Testing
import TimeSeries

@Suite("Time-series store: ingest log, flushes, sealed days")
struct TimeSeriesStoreTests {
    /// 2026-03-10T00:00:00Z, a Tuesday; samples are written relative to it.
    static let dayStart: Int64 = 1_773_100_800

    static func open(_ directory: TemporaryDirectory, settings: TimeSeriesSettings = TimeSeriesSettings(),
                     minuteRetention: TimeInterval = TimeSeriesStore.defaultMinuteRetention) throws -> (Database, TimeSeriesStore) {
        let db = try Database.open(path: directory.appending("db"),
                                   columnFamilies: TimeSeriesStore.columnFamilies(minuteRetention: minuteRetention, dayRetention: max(minuteRetention, TimeSeriesStore.defaultDayRetention)))
        return (db, try TimeSeriesStore(database: db, settings: settings))
    }

    static func point(node: Int, second: Int64, latency: Double, bytes: Double) -> SeriesPoint {
        SeriesPoint(organization: "org", measurement: "node_bucket", tags: [(key: "node", value: "n\(node)")],
                    fields: [(name: "latency_ms", value: latency), (name: "upl_bytes", value: bytes)],
                    timestamp: (dayStart + second) * 1_000_000_000)
    }

    /// Every rollup of both fields, per minute and per day, for all series: the observable state.
    static func snapshot(_ store: TimeSeriesStore) throws -> [String] {
        var out: [String] = []
        for (id, key) in store.index.series(organization: "org", measurement: "node_bucket") {
            for name in ["latency_ms", "upl_bytes"] {
                guard let field = store.index.existingFieldID(name) else { continue }
                for perDay in [false, true] {
                    for row in try store.rollups(series: id, field: field, start: dayStart - 86_400, end: dayStart + 3 * 86_400, perDay: perDay) {
                        out.append("\(key.tags) \(name) \(perDay) \(row.start) \(row.rollup)")
                    }
                }
            }
        }
        // Series ids depend on arrival order; the observable state does not.
        return out.sorted()
    }

    @Test func flushWaitersWakeOnTheFlushTheyNeedOrOnCancellation() async throws {
        let directory = TemporaryDirectory(prefix: "flush-waiters")
        let (db, store) = try Self.open(directory)
        defer { db.close() }
        // Already reached: returns at once.
        #expect(await store.flushed(atLeast: 0))
        // Waits for a flush that writes something; an empty flush does not count.
        let waiter = Task { await store.flushed(atLeast: 1) }
        try store.flush()
        #expect(store.flushCount == 0)
        _ = try store.write([Self.point(node: 1, second: 0, latency: 1, bytes: 1)], now: Date(timeIntervalSince1970: TimeInterval(Self.dayStart)), sync: false)
        try store.flush()
        #expect(await waiter.value)
        // A waiter for a flush that never comes returns false once cancelled.
        let stuck = Task { await store.flushed(atLeast: 5) }
        stuck.cancel()
        #expect(await stuck.value == false)
    }

    @Test func acknowledgedSamplesSurviveAReopenBeforeAnyFlush() throws {
        let directory = TemporaryDirectory(prefix: "ts-log")
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 7200))
        let points = (0..<50).map { Self.point(node: $0 % 5, second: Int64($0) * 30, latency: Double($0), bytes: Double($0 * 10)) }
        var (db, store) = try Self.open(directory)
        let outcome = try store.write(points, now: now, sync: false)
        #expect(outcome.stored == 100)
        let before = try Self.snapshot(store)
        #expect(!before.isEmpty)
        #expect(store.pendingLogEntries == 1)
        db.close()

        // Reopen: the log entry is replayed into memory and the reads are the same.
        (db, store) = try Self.open(directory)
        #expect(store.pendingLogEntries == 1)
        #expect(store.pendingSamples == 100)
        #expect(try Self.snapshot(store) == before)
        // After a flush the log is empty, and the blocks alone give the same answer after a reopen.
        try store.flush()
        #expect(store.pendingLogEntries == 0)
        #expect(try Self.snapshot(store) == before)
        db.close()
        (db, store) = try Self.open(directory)
        #expect(store.pendingLogEntries == 0)
        #expect(try Self.snapshot(store) == before)
        db.close()
    }

    /// Log entries that reached an SST file before the flush that deleted them, their
    /// tombstones and the write-ahead-log files are gone after `settle`; the samples are not.
    @Test func settlingLeavesNoLogBytesBehindAndKeepsEverySample() throws {
        let directory = TemporaryDirectory(prefix: "ts-settle")
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 7200))
        var (db, store) = try Self.open(directory)
        let log = try db.columnFamily("ingest_log")
        for write in 0..<20 {
            let points = (0..<50).map { Self.point(node: $0, second: Int64(write) * 60, latency: Double(write), bytes: Double($0)) }
            _ = try store.write(points, now: now, sync: false)
            // Half the entries reach SST files before the flush deletes them.
            if write == 10 { try db.flush(log) }
        }
        try store.flush()
        try db.flush(log)
        let before = try Self.snapshot(store)
        #expect(before.count == 50 * 2 * 21)
        func logBytes() -> UInt64 { db.integerProperty("rocksdb.total-sst-files-size", of: log) ?? 0 }
        func walBytes() throws -> Int {
            let path = directory.appending("db")
            return try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".log") }.reduce(0) { total, name in
                total + ((try FileManager.default.attributesOfItem(atPath: path + "/" + name)[.size] as? Int) ?? 0)
            }
        }
        #expect(logBytes() > 10_000)
        #expect(try walBytes() > 10_000)
        try store.settle()
        #expect(logBytes() == 0)
        #expect(try walBytes() < 1_000)
        #expect(store.settleCount == 1)
        #expect(try Self.snapshot(store) == before)
        db.close()
        (db, store) = try Self.open(directory)
        #expect(store.pendingLogEntries == 0)
        #expect(try Self.snapshot(store) == before)
        db.close()
    }

    /// After a burst over two days, `settle` folds every merge operand of those days into one
    /// value a block: no file is left in level 0 of `blocks`, the answers are the same, and the
    /// next burst's settle does it again for the day it wrote.
    @Test func settleFoldsTheMergeOperandsOfTheBurstsDays() throws {
        let directory = TemporaryDirectory(prefix: "ts-settle-days")
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400 + 7200))
        // Compactions apply retention against the real clock: keep the test's days.
        let (db, store) = try Self.open(directory, minuteRetention: 100 * 365 * 86_400)
        defer { db.close() }
        let blocks = try db.columnFamily("blocks")
        // Day 0 and day 1, three flushes each: three merge operands per block, in three level-0
        // files (below RocksDB's trigger of four, so that no automatic compaction folds them
        // before the settle does; with five, one sometimes did in the full suite).
        for round in 0..<3 {
            for day in 0..<2 {
                let second = Int64(day) * 86_400 + Int64(round) * 60
                let points = (0..<30).map { (node: Int) -> SeriesPoint in Self.point(node: node, second: second, latency: Double(round) + 0.5, bytes: Double(node)) }
                _ = try store.write(points, now: now, sync: false)
            }
            try store.flush()
            try db.flush(blocks)
        }
        let before = try Self.snapshot(store)
        #expect(Self.levelZeroFiles(db, blocks) >= 1)
        try store.settle()
        #expect(Self.levelZeroFiles(db, blocks) == 0)
        #expect(try Self.snapshot(store) == before)

        for round in 5..<8 {
            let second = 86_400 + Int64(round) * 60
            let points = (0..<30).map { (node: Int) -> SeriesPoint in Self.point(node: node, second: second, latency: Double(round), bytes: Double(node)) }
            _ = try store.write(points, now: now, sync: false)
            try store.flush()
            try db.flush(blocks)
        }
        #expect(Self.levelZeroFiles(db, blocks) >= 2)
        try store.settle()
        #expect(Self.levelZeroFiles(db, blocks) == 0)
        #expect(try Self.snapshot(store).count == before.count + 30 * 2 * 3)
        #expect(store.settleCount == 2)
    }

    /// SST files in level 0 of `family` (a string property in RocksDB).
    static func levelZeroFiles(_ db: Database, _ family: ColumnFamily) -> Int {
        db.property("rocksdb.num-files-at-level0", of: family).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) } ?? -1
    }

    /// Blocks in format 2's series-major `samples` family (versions 1–3, as written by earlier
    /// releases) move into `blocks` at open; a crash midway (a block already in both families)
    /// changes nothing, since merging a block twice is a no-op.
    @Test func seriesMajorBlocksOfFormat2MoveToBlocksAtOpen() throws {
        let directory = TemporaryDirectory(prefix: "ts-migrate")
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400))
        // The reference: the same samples written by this version.
        let referenceDirectory = TemporaryDirectory(prefix: "ts-migrate-reference")
        var (db, store) = try Self.open(referenceDirectory)
        let points = (0..<300).map { (index: Int) -> SeriesPoint in
            Self.point(node: index % 6, second: Int64(index) * 97, latency: Double(index % 40) / 10, bytes: Double(index * 1_001))
        }
        _ = try store.write(points, now: now, sync: false)
        try store.flush()
        let expected = try Self.snapshot(store)
        // Its blocks, rewritten as format 2 keys and older encodings into `samples`.
        var old: [(key: [UInt8], value: [UInt8])] = []
        try db.scan(try db.columnFamily("blocks")) { key, value in
            // Format 2 had a block per hour.
            let blockKey = try #require(BlockKey(bytes: key))
            let block = try #require(SampleBlock(decoding: value))
            for hour in Set(block.samples.map { RollupKey.hour(ofNanoseconds: $0.timestamp) }).sorted() {
                let part = SampleBlock(samples: block.samples.filter { RollupKey.hour(ofNanoseconds: $0.timestamp) == hour })
                let encodings = [part.encodedVarint(), part.encodedXOR(), part.encodedFixedWidth()]
                old.append((RollupKey(series: blockKey.series, interval: hour).bytes, encodings[old.count % 3]))
            }
            return true
        }
        #expect(old.count > 20)
        db.close()
        try FileManager.default.copyItem(atPath: referenceDirectory.appending("db"), toPath: directory.appending("db"))
        db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        let blocks = try db.columnFamily("blocks")
        let samples = try db.columnFamily("samples")
        try db.deleteRange(from: BlockKey.start(ofDay: 0), to: BlockKey.start(ofDay: .max), in: blocks)
        for (index, entry) in old.enumerated() {
            try db.put(entry.key, entry.value, in: samples)
            // The first third had already moved when the process died.
            if index < old.count / 3 {
                let key = try #require(RollupKey(bytes: entry.key))
                try db.merge(BlockKey(series: key.series, hour: key.interval).bytes, entry.value, in: blocks)
            }
        }
        db.close()
        (db, store) = try Self.open(directory)
        #expect(try Self.snapshot(store) == expected)
        var left = 0
        try db.scan(try db.columnFamily("samples")) { _, _ in
            left += 1
            return true
        }
        #expect(left == 0)
        db.close()
        (db, store) = try Self.open(directory)
        #expect(try Self.snapshot(store) == expected)
        db.close()
    }

    @Test func blockKeysSortByDaySeriesSpanAndRefuseOtherBytes() throws {
        // A key names the four-hour span holding its hour.
        #expect(BlockKey(series: 1, hour: 30).hour == 28 && BlockKey(series: 1, hour: 30) == BlockKey(series: 1, hour: 31))
        let keys = [BlockKey(series: 9, hour: 20), BlockKey(series: 1, hour: 24), BlockKey(series: 1, hour: 28), BlockKey(series: 2, hour: 24),
                    BlockKey(series: 0, hour: UInt32.max)]
        for key in keys { #expect(BlockKey(bytes: key.bytes) == key) }
        let sorted = keys.map(\.bytes).sorted { $0.lexicographicallyPrecedes($1) }.compactMap { BlockKey(bytes: $0) }
        #expect(sorted == keys)
        #expect(BlockKey(bytes: [UInt8](repeating: 0, count: 12)) == nil)
        #expect(BlockKey(bytes: BlockKey.bound(day: 3, series: 1, span: BlockKey.spansPerDay)) == nil)
        #expect(BlockKey(bytes: [0xFF, 0xFF, 0xFF, 0xFF] + [UInt8](repeating: 0, count: 8) + [0]) == nil)
        #expect(BlockKey.bound(day: 1, series: 1, span: BlockKey.spansPerDay).lexicographicallyPrecedes(BlockKey(series: 2, hour: 24).bytes))
    }

    @Test func retriesAcrossFlushesCountOnceAndLateDataMatchesInOrder() throws {
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400))
        let points = (0..<400).map { Self.point(node: $0 % 7, second: Int64($0) * 17, latency: Double($0 % 13), bytes: Double($0 * 3)) }

        let inOrderDirectory = TemporaryDirectory(prefix: "ts-order")
        let (inOrderDB, inOrder) = try Self.open(inOrderDirectory)
        _ = try inOrder.write(points, now: now, sync: false)
        try inOrder.flush()
        let expected = try Self.snapshot(inOrder)
        inOrderDB.close()

        // The same batch three times, flushed in between and not: identical rollups.
        let retriedDirectory = TemporaryDirectory(prefix: "ts-retry")
        let (retriedDB, retried) = try Self.open(retriedDirectory)
        _ = try retried.write(points, now: now, sync: false)
        try retried.flush()
        _ = try retried.write(points, now: now, sync: false)
        _ = try retried.write(points, now: now, sync: false)
        #expect(try Self.snapshot(retried) == expected)
        try retried.flush()
        #expect(try Self.snapshot(retried) == expected)
        retriedDB.close()

        // Later half first (flushed), earlier half afterwards, in small shuffled writes.
        let lateDirectory = TemporaryDirectory(prefix: "ts-late")
        let (lateDB, late) = try Self.open(lateDirectory)
        _ = try late.write(Array(points[200...]), now: now, sync: false)
        try late.flush()
        for chunk in stride(from: 0, to: 200, by: 25).shuffled() {
            _ = try late.write(Array(points[chunk..<(chunk + 25)]), now: now, sync: false)
        }
        #expect(try Self.snapshot(late) == expected)
        lateDB.close()
    }

    /// The pending buffer is kept in arrival order and grouped by series and hour only when
    /// read or flushed: points written in descending series order, hours out of order, each
    /// (series, field, time) rewritten by later writes with new values, read exactly as the
    /// last values written once, before the flush (from the buffer) and after it.
    @Test func pendingSamplesGroupBySeriesAndHourKeepingArrivalOrder() throws {
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400))
        func round(_ round: Int) -> [SeriesPoint] {
            (0..<9).reversed().flatMap { node in
                [2, 0, 1].map { hour in
                    Self.point(node: node, second: Int64(hour * 3600 + node * 60), latency: Double(round * 100 + node), bytes: Double(round * 1000 + hour))
                }
            }
        }
        let expectedDirectory = TemporaryDirectory(prefix: "ts-pending-expected")
        let (expectedDB, expectedStore) = try Self.open(expectedDirectory)
        _ = try expectedStore.write(round(2), now: now, sync: false)
        try expectedStore.flush()
        let expected = try Self.snapshot(expectedStore)
        expectedDB.close()

        let directory = TemporaryDirectory(prefix: "ts-pending")
        let (db, store) = try Self.open(directory)
        defer { db.close() }
        for number in 0..<3 {
            // One write per node and round, so that the buffer holds many small writes.
            for point in round(number) { _ = try store.write([point], now: now, sync: false) }
        }
        #expect(store.pendingSamples == 3 * 9 * 3 * 2)
        #expect(try Self.snapshot(store) == expected)
        try store.flush()
        #expect(store.pendingSamples == 0)
        #expect(try Self.snapshot(store) == expected)
    }

    /// The `/metrics` traffic counters: a retried traffic sample counts once whether its copies
    /// meet in one flush or a later flush finds the first in its block; other measurements'
    /// fields of the same names are not summed.
    @Test func trafficTotalsCountRetriesOnce() throws {
        let directory = TemporaryDirectory(prefix: "traffic-totals")
        // The store sums what the wiring names (the fleet's counters in the service).
        var settings = TimeSeriesSettings()
        settings.countedFields = ["upl_bytes", "requests"]
        settings.countedMeasurements = ["bucket_traffic"]
        let (db, store) = try Self.open(directory, settings: settings)
        defer { db.close() }
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 3600))
        func traffic(_ second: Int64, _ bytes: Double) -> SeriesPoint {
            SeriesPoint(organization: "org", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b1"), (key: "node", value: "n1")],
                        fields: [(name: "upl_bytes", value: bytes), (name: "requests", value: 1)], timestamp: (Self.dayStart + second) * 1_000_000_000)
        }
        func totals() throws -> [Double] {
            let id = try #require(store.index.series(organization: "org", measurement: "bucket_traffic").first?.id)
            let fields = try ["upl_bytes", "requests"].map { try #require(store.index.existingFieldID($0)) }
            let values = store.countedTotals()[id] ?? [:]
            return fields.map { values[$0] ?? 0 }
        }
        // Two copies in one flush.
        _ = try store.write([traffic(60, 100), traffic(60, 100)], now: now, sync: false)
        try store.flush()
        #expect(try totals() == [100, 1])
        // The retry after the flush, and a new sample in the same hour and in the next hour.
        _ = try store.write([traffic(60, 100), traffic(120, 50), traffic(3660, 7)], now: now, sync: false)
        try store.flush()
        #expect(try totals() == [157, 3])
        // Everything again, across two flushes.
        _ = try store.write([traffic(60, 100), traffic(120, 50)], now: now, sync: false)
        try store.flush()
        _ = try store.write([traffic(3660, 7)], now: now, sync: false)
        try store.flush()
        #expect(try totals() == [157, 3])
        // Another measurement with the same field names is not summed.
        _ = try store.write([Self.point(node: 1, second: 60, latency: 5, bytes: 999)], now: now, sync: false)
        try store.flush()
        let other = try #require(store.index.series(organization: "org", measurement: "node_bucket").first?.id)
        #expect(store.countedTotals()[other] == nil)
    }

    @Test func concurrentWritersAndFlushesLoseNothing() async throws {
        let directory = TemporaryDirectory(prefix: "ts-concurrent")
        var settings = TimeSeriesSettings()
        settings.maxPendingSamples = 500   // writers flush inline too
        let (db, store) = try Self.open(directory, settings: settings)
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for batch in 0..<25 {
                        let points = (0..<20).map { index in
                            Self.point(node: writer, second: Int64(batch * 20 + index), latency: 1, bytes: 1)
                        }
                        _ = try store.write(points, now: now, sync: false)
                    }
                }
            }
            group.addTask {
                for _ in 0..<50 { try store.flush() }
            }
            try await group.waitForAll()
        }
        let field = try #require(store.index.existingFieldID("latency_ms"))
        var total: UInt64 = 0
        for (id, _) in store.index.series(organization: "org", measurement: "node_bucket") {
            total += try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 3600, perDay: false).reduce(0) { $0 + $1.rollup.count }
        }
        #expect(total == 4 * 25 * 20)
        try store.flush()
        #expect(store.pendingSamples == 0)
        db.close()
    }

    @Test func aSealedDayEqualsTheMergeOfItsMinutesAndRefusesLateSamples() throws {
        let directory = TemporaryDirectory(prefix: "ts-seal")
        var (db, store) = try Self.open(directory)
        // Two days of samples, every 7 minutes, written while both days are still open.
        let writeTime = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 2 * 86_400 - 60))
        let points = (0..<(2 * 1440 / 7)).map { Self.point(node: $0 % 3, second: Int64($0) * 420, latency: Double($0 % 50), bytes: Double($0)) }
        #expect(try store.write(points, now: writeTime, sync: false).stored == points.count * 2)
        let minuteRows = try minuteDays(store)
        let openDays = try Self.snapshot(store)
        #expect(store.lastClosedDay(now: writeTime) != nil)

        // 48 h after the first day ended it can no longer change: sealing writes its records.
        let firstDay = UInt32(Self.dayStart / 86_400)
        let sealTime = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400 + 48 * 3600 + 120))
        #expect(store.lastClosedDay(now: sealTime) == firstDay)
        #expect(try store.sealDays(now: sealTime) == 3)
        #expect(store.sealedThroughDay == firstDay)
        #expect(try store.sealDays(now: sealTime) == 0)
        // Day rows (now from day records for the first day) are unchanged, and each equals the
        // merge of the day's minute rollups.
        #expect(try Self.snapshot(store) == openDays)
        let field = try #require(store.index.existingFieldID("latency_ms"))
        for (id, _) in store.index.series(organization: "org", measurement: "node_bucket") {
            let days = try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 2 * 86_400, perDay: true)
            #expect(days.count == 2)
            for day in days { #expect(minuteRows[id]?[day.start] == day.rollup) }
        }
        // A late sample for the sealed day is refused, even with a longer --max-sample-age.
        var longer = TimeSeriesSettings()
        longer.maxSampleAge = 30 * 86_400
        db.close()
        (db, store) = try Self.open(directory, settings: longer)
        #expect(store.sealedThroughDay == firstDay)
        let late = try store.write([Self.point(node: 0, second: 100, latency: 1000, bytes: 1)], now: sealTime, sync: false)
        #expect(late.stored == 0)
        #expect(late.rejected[.daySealed] == 2)
        #expect(try Self.snapshot(store) == openDays)
        db.close()

        func minuteDays(_ store: TimeSeriesStore) throws -> [UInt64: [Int64: FieldRollup]] {
            let field = try #require(store.index.existingFieldID("latency_ms"))
            var out: [UInt64: [Int64: FieldRollup]] = [:]
            for (id, _) in store.index.series(organization: "org", measurement: "node_bucket") {
                for row in try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 2 * 86_400, perDay: false) {
                    let day = row.start / 86_400 * 86_400
                    if out[id]?[day] == nil { out[id, default: [:]][day] = row.rollup } else { out[id]?[day]?.merge(row.rollup) }
                }
            }
            return out
        }
    }

    @Test func logAndDayEncodingsRoundTripAndRejectDamage() {
        var entry = IngestLogEntry()
        let fields: [(UInt16, Double)] = (0..<300).map { (UInt16($0), Double($0) * 1.5) }
        entry.append(series: 9, timestamp: 123, fields: fields[...])
        entry.append(series: 10, timestamp: 456, fields: fields[0..<2])
        var decoded: [(UInt64, FieldSample)] = []
        #expect(entry.bytes.withUnsafeBytes { IngestLogEntry.decode($0) { decoded.append(($0, $1)) } })
        #expect(decoded.count == 302)
        #expect(decoded.last.map { $0.0 == 10 && $0.1 == FieldSample(field: 1, timestamp: 456, value: 1.5) } == true)
        #expect(decoded[299].1 == FieldSample(field: 299, timestamp: 123, value: 448.5))
        let truncated = Array(entry.bytes.dropLast())
        #expect(!truncated.withUnsafeBytes { IngestLogEntry.decode($0) { _, _ in Issue.record("decoded a damaged entry") } })

        let record = DayRecord(fields: [(field: 3, rollup: FieldRollup(sample: FieldSample(field: 3, timestamp: 5, value: 2))),
                                        (field: 1, rollup: FieldRollup(sample: FieldSample(field: 1, timestamp: 6, value: -1)))])
        #expect(record.fields.map(\.field) == [1, 3])
        #expect(DayRecord(decoding: record.encoded()) == record)
        #expect(DayRecord(decoding: Array(record.encoded().dropLast())) == nil)
    }

    /// ONLINE minutes count minutes, not reports: a status reported every 10 s is one ONLINE
    /// minute per minute with a positive report, per minute, per day, and in the sealed record.
    @Test func onlineMinutesCountMinutesNotReports() throws {
        let directory = TemporaryDirectory(prefix: "ts-online")
        let (db, store) = try Self.open(directory)
        defer { db.close() }
        // Minute 0: six ONLINE reports; minute 1: ONLINE then OFFLINE; minute 2: OFFLINE only;
        // minute 3: DISCONNECTED (-1); minute 4: OFFLINE then ONLINE.
        let values: [[Double]] = [[1, 1, 1, 1, 1, 1], [1, 0], [0], [-1], [0, 1]]
        var points: [SeriesPoint] = []
        for (minute, reports) in values.enumerated() {
            for (index, value) in reports.enumerated() {
                points.append(SeriesPoint(organization: "org", measurement: "node_status", tags: [(key: "bucket", value: "b")],
                                          fields: [(name: "status", value: value)],
                                          timestamp: (Self.dayStart + Int64(minute) * 60 + Int64(index) * 10) * 1_000_000_000))
            }
        }
        let writeTime = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 600))
        _ = try store.write(points, now: writeTime, sync: false)
        let field = try #require(store.index.existingFieldID("status"))
        let id = try #require(store.index.series(organization: "org", measurement: "node_status").first?.id)
        let minutes = try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 600, perDay: false)
        #expect(minutes.map(\.rollup.onlineMinutes) == [1, 1, 0, 0, 1])
        #expect(minutes.map(\.rollup.onlineCount) == [6, 1, 0, 0, 1])
        let open = try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 600, perDay: true)
        #expect(open.first?.rollup.onlineMinutes == 3)
        try store.flush()
        #expect(try store.sealDays(now: Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 86_400 + 48 * 3600 + 120))) == 1)
        let sealed = try store.rollups(series: id, field: field, start: Self.dayStart, end: Self.dayStart + 600, perDay: true)
        #expect(sealed == open)
        // A version-1 day record (no ONLINE minutes) still reads, with the ONLINE samples instead.
        var version1: [UInt8] = [1, 0, 1, 0, 7]
        for word: UInt64 in [3, 0, 0, 0, 0, 0, 0, 0, 2] { withUnsafeBytes(of: word.bigEndian) { version1.append(contentsOf: $0) } }
        let decoded = try #require(DayRecord(decoding: version1))
        #expect(decoded.rollup(field: 7)?.onlineCount == 2)
        #expect(decoded.rollup(field: 7)?.onlineMinutes == 2)
    }

    /// The newest sample per series and field: from the buffer, from the cache after a flush,
    /// from the blocks after a reopen; the later of two writes of the same time wins.
    @Test func latestSamplesFromBufferCacheAndBlocks() throws {
        let directory = TemporaryDirectory(prefix: "ts-latest")
        var (db, store) = try Self.open(directory)
        let now = Date(timeIntervalSince1970: TimeInterval(Self.dayStart + 7200))
        // Node 0 reports every minute for two hours; node 1 once, an hour ago; the latency of
        // node 0 stops 30 minutes before its bytes do.
        var points = (0..<120).map { Self.point(node: 0, second: Int64($0) * 60, latency: Double($0), bytes: Double($0 * 10)) }
        for index in 90..<120 { points[index].fields.removeFirst() }
        points.append(Self.point(node: 1, second: 3600, latency: 7, bytes: 70))
        _ = try store.write(points, now: now, sync: false)
        let fields = [try #require(store.index.existingFieldID("latency_ms")), try #require(store.index.existingFieldID("upl_bytes"))]
        let ids = store.index.series(organization: "org", measurement: "node_bucket").map(\.id)
        let expected: [[LatestSample?]] = [
            [LatestSample(time: (Self.dayStart + 89 * 60) * 1_000_000_000, value: 89), LatestSample(time: (Self.dayStart + 119 * 60) * 1_000_000_000, value: 1190)],
            [LatestSample(time: (Self.dayStart + 3600) * 1_000_000_000, value: 7), LatestSample(time: (Self.dayStart + 3600) * 1_000_000_000, value: 70)],
        ]
        #expect(try store.latest(series: ids, fields: fields, now: now) == expected)
        try store.flush()
        #expect(try store.latest(series: ids, fields: fields, now: now) == expected)
        // A retry of node 1's sample with another value, then a newer one: buffer over cache.
        var retry = Self.point(node: 1, second: 3600, latency: 8, bytes: 80)
        _ = try store.write([retry], now: now, sync: false)
        #expect(try store.latest(series: [ids[1]], fields: fields, now: now)[0].map { $0?.value } == [8, 80])
        try store.flush()
        #expect(try store.latest(series: [ids[1]], fields: fields, now: now)[0].map { $0?.value } == [8, 80])
        retry = Self.point(node: 1, second: 3660, latency: 9, bytes: 90)
        _ = try store.write([retry], now: now, sync: false)
        try store.flush()
        #expect(try store.latest(series: [ids[1]], fields: fields, now: now)[0].map { $0?.value } == [9, 90])
        // After a reopen the blocks give the same answer; an unknown series has none.
        db.close()
        (db, store) = try Self.open(directory)
        defer { db.close() }
        let reopened = try store.latest(series: ids + [999], fields: fields, now: now)
        #expect(reopened[0] == expected[0])
        #expect(reopened[1].map { $0?.value } == [9, 90])
        #expect(reopened[2] == [nil, nil])
    }
}

import CollectorModel
import Foundation
import RocksDB
import Synchronization

/// All-time totals from running totals (``DayRecord/running`` and each series' ``RunningTotalsHead``):
/// the sealed part of a series' retained history costs one read whatever its length (two for a
/// series older than the retention); the open days (at most `--max-sample-age` and a day) come
/// from their blocks, one iterator a day for all series, and the pending samples.
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
    /// Sealed days: the running totals of the series' head (its newest sealed day), less, when the
    /// head's totals began before the retained days, those of its first retained record before
    /// that record's own day. Open days: their blocks and pending samples.
    public func totals(series ids: [UInt64], fields: [UInt16], now: Date) throws -> [[FieldTotal]] {
        var out = [[FieldTotal]](repeating: [FieldTotal](repeating: FieldTotal(), count: fields.count), count: ids.count)
        guard !ids.isEmpty, !fields.isEmpty else { return out }
        let firstDay = firstRetainedDay(now: now)
        var openFrom = firstDay
        if let sealed = readableThroughDay, sealed >= firstDay {
            guard sealed < UInt32.max else { return out }
            openFrom = sealed + 1
            try sealedTotals(ids, fields: fields, firstDay: firstDay, sealed: sealed, into: &out)
        }
        let end = UnixTime(clamping: now).adding(seconds: 86_400).seconds
        guard end > Int64(openFrom) * 86_400 else { return out }
        try openTotals(ids, fields: fields, from: openFrom, through: UInt32(clamping: (end - 1) / 86_400), end: end, into: &out)
        return out
    }

    /// Adds the totals of the sealed days `firstDay...sealed` from the heads and, for series whose
    /// totals began before `firstDay`, their first retained record. Series in ascending order,
    /// so that one cursor walks the `totals` family forward.
    private func sealedTotals(_ ids: [UInt64], fields: [UInt16], firstDay: UInt32, sealed: UInt32, into out: inout [[FieldTotal]]) throws {
        // Heads change only when days are sealed: kept in memory between seals.
        let generation = headCache.generation
        let cached = headCache.lookup(ids)
        var heads: AscendingSeriesCursor?
        var read: [(UInt64, RunningTotalsHead?)] = []
        var dayIterator: Iterator?
        var key = [UInt8](repeating: 0, count: 12)
        /// The day record of `id` at or before (`before`), or at or after, `day`, with its day.
        func dayRecord(of id: UInt64, nearest day: UInt32, before: Bool) throws -> (UInt32, DayRecord)? {
            let cursor = try dayIterator ?? database.makeIterator(days)
            dayIterator = cursor
            RollupKey(series: id, interval: day).write(into: &key)
            if before { cursor.seek(forPrevious: key) } else { cursor.seek(to: key) }
            let found = cursor.isValid ? cursor.withKey { key in
                key.count == 12 && readBigEndian(UInt64.self, key, at: 0) == id ? readBigEndian(UInt32.self, key, at: 8) : nil
            } : nil
            try cursor.checkError()
            guard let found, let record = cursor.withValue({ DayRecord(decoding: $0) }) else { return nil }
            return (found, record)
        }
        for offset in ids.indices.sorted(by: { ids[$0] < ids[$1] }) {
            let id = ids[offset]
            let found: RunningTotalsHead?
            if let hit = cached[id] {
                found = hit
            } else {
                let cursor = try heads ?? AscendingSeriesCursor(database.makeIterator(totalsFamily), seriesOffset: 0, keySize: 8)
                heads = cursor
                found = cursor.move(to: id, seekKey: RunningTotalsHead.key(series: id)) ? cursor.iterator.withValue { RunningTotalsHead(decoding: $0) } : nil
                read.append((id, found))
            }
            guard var head = found, head.lastDay >= firstDay else { continue }
            if head.lastDay > sealed {
                // A seal is being written: the head is ahead of the days reads take from records
                // (the newer ones come from their blocks). Its totals as of `sealed`: the series'
                // latest record up to then.
                guard let (last, record) = try dayRecord(of: id, nearest: sealed, before: true), last >= firstDay else { continue }
                head = RunningTotalsHead(chainStart: head.chainStart, lastDay: last, running: record.running ?? [])
            }
            var base: DayRecord?
            if head.chainStart < firstDay {
                // Retention cut into the totals: take away what came before the first retained record.
                guard let (first, record) = try dayRecord(of: id, nearest: firstDay, before: false), first <= head.lastDay else { continue }
                base = record
            }
            for (index, field) in fields.enumerated() {
                var total = head.runningTotal(field: field)
                if let base { total.subtract(base.runningTotal(before: field)) }
                out[offset][index].add(total)
            }
        }
        try heads?.iterator.checkError()
        if !read.isEmpty { headCache.store(read, ifGeneration: generation) }
    }

    /// Adds the totals of the open days `firstDay...lastDay` (samples before `end`, Unix
    /// seconds): series with pending samples through ``rollups(series:fields:start:end:perDay:)``
    /// (which unions them with the blocks); the others from the open-day cache or one forward
    /// pass over each day's blocks in series order, whose whole days then go into the cache.
    private func openTotals(_ ids: [UInt64], fields: [UInt16], from firstDay: UInt32, through lastDay: UInt32, end: Int64,
                            into out: inout [[FieldTotal]]) throws {
        guard firstDay <= lastDay else { return }
        // Before the buffer is looked at: a flush after this point keeps what is read from
        // going into the cache.
        let generation = openDayTotals.generation
        let (pending, stored) = state.withLock { state -> ([Bool], ClosedRange<UInt32>?) in
            // In place (optional chaining mutates the stored buffer): a copy of a buffer being
            // flushed would copy its columns for every id.
            let flags = ids.map { id in state.active.contains(series: id) || state.flushing?.contains(series: id) == true }
            return (flags, state.storedDays)
        }
        for offset in ids.indices where pending[offset] {
            let rows = try rollups(series: ids[offset], fields: fields, start: Int64(firstDay) * 86_400, end: end, perDay: true)
            for (index, perField) in rows.enumerated() {
                for row in perField { out[offset][index].add(row.rollup) }
            }
        }
        guard let stored, stored.lowerBound <= lastDay, stored.upperBound >= firstDay else { return }
        let endNanos = end.multipliedReportingOverflow(by: 1_000_000_000)
        let limit = endNanos.overflow ? Int64.max : endNanos.partialValue
        let order = ids.indices.filter { !pending[$0] }.sorted { ids[$0] < ids[$1] }
        guard !order.isEmpty else { return }
        for day in max(firstDay, stored.lowerBound)...min(lastDay, stored.upperBound) {
            // A whole day before `end`'s day is cached; the last may be cut by `end`.
            let cacheable = day < lastDay
            let cached = cacheable ? openDayTotals.lookup(order.map { ids[$0] }, day: day) : [:]
            var computed: [(UInt64, [(field: UInt16, total: FieldTotal)])] = []
            var cursor: AscendingSeriesCursor?
            for offset in order {
                let id = ids[offset]
                if let hit = cached[id] {
                    for (field, total) in hit {
                        if let index = fields.firstIndex(of: field) { out[offset][index].add(total) }
                    }
                    continue
                }
                let active = try cursor ?? AscendingSeriesCursor(database.makeIterator(blocks, lowerBound: BlockKey.start(ofDay: day),
                                                                                       upperBound: BlockKey.start(ofDay: day &+ 1)),
                                                                  seriesOffset: 4, keySize: BlockKey.size)
                cursor = active
                var all: [(field: UInt16, total: FieldTotal)] = []
                if active.move(to: id, seekKey: BlockKey.bound(day: day, series: id, span: 0)) {
                    // The series' blocks of the day (up to six spans), then on to the next series.
                    while active.series == id {
                        if let block = active.iterator.withValue({ SampleBlock(decoding: $0) }) {
                            for sample in block.samples where sample.timestamp < limit {
                                if let slot = all.firstIndex(where: { $0.field == sample.field }) {
                                    all[slot].total.count &+= 1
                                    all[slot].total.sum += sample.value
                                } else {
                                    all.append((sample.field, FieldTotal(count: 1, sum: sample.value)))
                                }
                            }
                        }
                        active.iterator.next()
                    }
                }
                for (field, total) in all {
                    if let index = fields.firstIndex(of: field) { out[offset][index].add(total) }
                }
                if cacheable { computed.append((id, all)) }
            }
            try cursor?.iterator.checkError()
            if !computed.isEmpty { openDayTotals.store(computed, day: day, ifGeneration: generation) }
        }
    }

    /// `series` column family key set once every day record carries running totals and every
    /// series with day records has a head.
    static let runningTotalsKey = Array("s/day_running_totals".utf8)

    /// Gives every day record running totals and every series a ``RunningTotalsHead``, once per
    /// database (format 3 → 4): one pass over the `day` family in key order (series by series,
    /// days ascending), each record rewritten with the running totals of its series so far.
    /// Idempotent: a crash midway recomputes the same records at the next open. Returns the
    /// records rewritten.
    @discardableResult
    static func addRunningTotals(_ database: Database, days: ColumnFamily, heads: ColumnFamily, series seriesFamily: ColumnFamily) throws -> Int {
        guard try database.get(runningTotalsKey, in: seriesFamily) == nil else { return 0 }
        var rewritten = 0
        var writer = ChunkedWriter(database: database)
        var chain: (series: UInt64, start: UInt32, day: UInt32, record: DayRecord)?
        func putHead() throws {
            guard let chain else { return }
            writer.batch.put(RunningTotalsHead.key(series: chain.series),
                             RunningTotalsHead(chainStart: chain.start, lastDay: chain.day, running: chain.record.running ?? []).encoded(), in: heads)
            try writer.added()
        }
        try database.scan(days) { key, value in
            guard key.count == 12 else { return true }
            let series = readBigEndian(UInt64.self, key, at: 0)
            let day = readBigEndian(UInt32.self, key, at: 8)
            guard let record = DayRecord(decoding: value) else { return true }
            let previous = chain?.series == series ? chain : nil
            if previous == nil { try putHead() }
            let updated = DayRecord(fields: record.fields, after: previous?.record)
            writer.batch.put(Array(key), updated.encoded(), in: days)
            chain = (series, previous?.start ?? day, day, updated)
            rewritten += 1
            try writer.added()
            return true
        }
        try putHead()
        writer.batch.put(runningTotalsKey, [1], in: seriesFamily)
        try writer.finish()
        return rewritten
    }
}

/// The newest running totals of a series: the running totals of its last sealed day, the day
/// they began (`chainStart`: its first day record, or the first after retention had dropped all
/// before) and that last day. The value of the `totals` column family under the series id
/// (u64 BE), rewritten with each sealed day of the series; the retention filter drops it once
/// its last day is past `--retention-day`. Kept apart from the day records, so that the heads of
/// every series are a few contiguous blocks that stay in the block cache.
///
/// Encoding: `0x81 ‖ chainStart u32 BE ‖ lastDay u32 BE ‖ count u16 BE ‖ count × (field u16 BE ‖
/// count u64 ‖ sum f64)`, fields ascending.
struct RunningTotalsHead: Equatable {
    static let version: UInt8 = 0x81
    static let headerSize = 11

    var chainStart: UInt32
    var lastDay: UInt32
    var running: [(field: UInt16, total: FieldTotal)]

    static func key(series: UInt64) -> [UInt8] { withUnsafeBytes(of: series.bigEndian) { Array($0) } }

    static func == (lhs: RunningTotalsHead, rhs: RunningTotalsHead) -> Bool {
        lhs.chainStart == rhs.chainStart && lhs.lastDay == rhs.lastDay && lhs.running.count == rhs.running.count
            && zip(lhs.running, rhs.running).allSatisfy { $0.field == $1.field && $0.total == $1.total }
    }

    func runningTotal(field: UInt16) -> FieldTotal {
        running.first { $0.field == field }?.total ?? FieldTotal()
    }

    func encoded() -> [UInt8] {
        let entries = running.prefix(Int(UInt16.max))
        var bytes: [UInt8] = [Self.version]
        bytes.reserveCapacity(Self.headerSize + entries.count * DayRecord.runningEntrySize)
        appendBigEndian(chainStart, to: &bytes)
        appendBigEndian(lastDay, to: &bytes)
        appendBigEndian(UInt16(entries.count), to: &bytes)
        FieldTotal.append(entries, to: &bytes)
        return bytes
    }

    init(chainStart: UInt32, lastDay: UInt32, running: [(field: UInt16, total: FieldTotal)]) {
        self.chainStart = chainStart
        self.lastDay = lastDay
        self.running = running
    }

    /// The last day of a head's bytes (for the retention filter), or `nil`.
    static func lastDay(of bytes: UnsafeRawBufferPointer) -> UInt32? {
        guard bytes.count >= headerSize, bytes[0] == version else { return nil }
        return readBigEndian(UInt32.self, bytes, at: 5)
    }

    init?(decoding bytes: [UInt8]) {
        guard let head = bytes.withUnsafeBytes({ RunningTotalsHead(decoding: $0) }) else { return nil }
        self = head
    }

    init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.headerSize, bytes[0] == Self.version else { return nil }
        let count = Int(readBigEndian(UInt16.self, bytes, at: 9))
        guard bytes.count == Self.headerSize + count * DayRecord.runningEntrySize else { return nil }
        chainStart = readBigEndian(UInt32.self, bytes, at: 1)
        lastDay = readBigEndian(UInt32.self, bytes, at: 5)
        running = FieldTotal.decode(count, from: bytes, at: Self.headerSize)
    }
}

/// What sealing a series' day continues: the running totals of its last sealed day before, and
/// the day they began. Read from the series' head when that is older than the day being sealed
/// (one point read), else (sealing again after a crash) from its latest record before the day.
struct PreviousDayRecords {
    private let database: Database
    private let heads: ColumnFamily
    private let iterator: Iterator
    private var key = [UInt8](repeating: 0, count: 12)

    /// Reads what was committed when it was made (a day's records are committed before the next
    /// day is sealed).
    init(database: Database, days: ColumnFamily, heads: ColumnFamily) throws {
        self.database = database
        self.heads = heads
        iterator = try database.makeIterator(days)
    }

    /// The running totals of `series` through its latest sealed day before `day` and the day
    /// they began; `nil` when it has no record before `day`.
    mutating func previous(series: UInt64, before day: UInt32) throws -> (running: [(field: UInt16, total: FieldTotal)], chainStart: UInt32)? {
        guard day > 0 else { return nil }
        let head = try database.get(RunningTotalsHead.key(series: series), in: heads).flatMap { RunningTotalsHead(decoding: $0) }
        if let head, head.lastDay < day { return (head.running, head.chainStart) }
        RollupKey(series: series, interval: day - 1).write(into: &key)
        iterator.seek(forPrevious: key)
        guard iterator.isValid else {
            try iterator.checkError()
            return nil
        }
        let same = iterator.withKey { $0.count == 12 && readBigEndian(UInt64.self, $0, at: 0) == series }
        guard same, let record = iterator.withValue({ DayRecord(decoding: $0) }) else { return nil }
        let recordDay = iterator.withKey { readBigEndian(UInt32.self, $0, at: 8) }
        // A head of the same chain began no later; without one, the chain's start is unknown and
        // taken as the record's own day only when nothing older is there (never too late: an
        // early start makes totals read the first retained record, which is always right).
        return (record.running ?? [], min(head?.chainStart ?? 0, recordDay))
    }
}

/// A cursor over keys that hold a series id at a fixed offset, visited for ascending ids: it steps
/// forward over short gaps (a request for most series reads a key range in one pass) and seeks
/// over long ones.
final class AscendingSeriesCursor {
    let iterator: Iterator
    private let seriesOffset: Int
    private let keySize: Int
    private var positioned = false
    /// Steps tried before a seek.
    private static let maxSteps = 8

    init(_ iterator: Iterator, seriesOffset: Int, keySize: Int) {
        self.iterator = iterator
        self.seriesOffset = seriesOffset
        self.keySize = keySize
    }

    /// The series of the current entry, or `nil` when there is none (or its key is not one of
    /// this family's).
    var series: UInt64? {
        guard iterator.isValid else { return nil }
        return iterator.withKey { $0.count == keySize ? readBigEndian(UInt64.self, $0, at: seriesOffset) : nil }
    }

    /// Moves to the first entry whose series is `id` or later (`seekKey`: the first possible key
    /// of `id`); returns whether it is `id`'s. Calls must come with ascending ids.
    func move(to id: UInt64, seekKey: [UInt8]) -> Bool {
        if !positioned {
            iterator.seek(to: seekKey)
            positioned = true
        } else if iterator.isValid {
            var steps = 0
            while let current = series, current < id, steps < Self.maxSteps {
                iterator.next()
                steps += 1
            }
            // Still before `id`, or on a key of another shape: seek.
            if iterator.isValid, series.map({ $0 < id }) ?? true { iterator.seek(to: seekKey) }
        }
        return series == id
    }
}

/// Totals per field of the blocks of open days, per (series, day), for the series some totals
/// query asked about: a steady dashboard's `/bucket/stats` reads no open-day block twice. A flush
/// forgets the (series, day) pairs it writes (``forget(_:)``) and moves the generation on, so a
/// query that read blocks before a flush never stores what it read after it; sealing forgets the
/// days it sealed. Bounded: past ``limit`` entries it starts over.
final class OpenDayTotalsCache: Sendable {
    struct Key: Hashable {
        var series: UInt64
        var day: UInt32
    }

    private struct State {
        var entries: [Key: [(field: UInt16, total: FieldTotal)]] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    /// Most (series, day) entries kept.
    static let limit = 1 << 20

    /// Moves on with every flush.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// The cached totals of `ids` on `day`, by series.
    func lookup(_ ids: [UInt64], day: UInt32) -> [UInt64: [(field: UInt16, total: FieldTotal)]] {
        state.withLock { state in
            guard !state.entries.isEmpty else { return [:] }
            var out: [UInt64: [(field: UInt16, total: FieldTotal)]] = [:]
            for id in ids {
                if let hit = state.entries[Key(series: id, day: day)] { out[id] = hit }
            }
            return out
        }
    }

    /// Keeps `computed` for `day` unless a flush came after `generation` was read.
    func store(_ computed: [(UInt64, [(field: UInt16, total: FieldTotal)])], day: UInt32, ifGeneration generation: UInt64) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count + computed.count > Self.limit { state.entries.removeAll() }
            for (id, totals) in computed { state.entries[Key(series: id, day: day)] = totals }
        }
    }

    /// Forgets the pairs a flush wrote.
    func forget(_ written: [Key]) {
        state.withLock { state in
            state.generation &+= 1
            guard !state.entries.isEmpty else { return }
            for key in written { state.entries.removeValue(forKey: key) }
        }
    }

    /// Forgets the days up to `day` (sealed: their totals come from the heads now).
    func forget(throughDay day: UInt32) {
        state.withLock { state in
            state.generation &+= 1
            state.entries = state.entries.filter { $0.key.day > day }
        }
    }
}

/// Each asked series' ``RunningTotalsHead`` (or that it has none), between two changes of the
/// `totals` family: sealing and retention compactions clear it and move the generation on, so a
/// query that read heads before never stores them after. Bounded: past ``limit`` entries it starts
/// over.
final class HeadCache: Sendable {
    private struct State {
        /// `.some(nil)`: the series has no head.
        var entries: [UInt64: RunningTotalsHead?] = [:]
        var generation: UInt64 = 0
    }

    private let state = Mutex(State())
    static let limit = 1 << 20

    var generation: UInt64 { state.withLock { $0.generation } }

    /// The cached heads of `ids` (a present key with a `nil` value: no head).
    func lookup(_ ids: [UInt64]) -> [UInt64: RunningTotalsHead?] {
        state.withLock { state in
            guard !state.entries.isEmpty else { return [:] }
            var out: [UInt64: RunningTotalsHead?] = [:]
            for id in ids {
                if let hit = state.entries[id] { out[id] = hit }
            }
            return out
        }
    }

    func store(_ read: [(UInt64, RunningTotalsHead?)], ifGeneration generation: UInt64) {
        state.withLock { state in
            guard state.generation == generation else { return }
            if state.entries.count + read.count > Self.limit { state.entries.removeAll() }
            for (id, head) in read { state.entries[id] = .some(head) }
        }
    }

    /// Forgets every head (the family changed).
    func clear() {
        state.withLock { state in
            state.generation &+= 1
            state.entries.removeAll()
        }
    }
}

import CollectorModel
import Foundation
import RocksDB
import Synchronization

/// A point to store: one series (organization, measurement, sorted tags) at one time with
/// numeric fields.
public struct SeriesPoint: Sendable {
    public var organization: String
    public var measurement: String
    /// Sorted by key, keys unique.
    public var tags: [(key: String, value: String)]
    public var fields: [(name: String, value: Double)]
    /// Nanoseconds since the Unix epoch.
    public var timestamp: Int64

    /// A `SeriesPoint` from its parts.
    public init(organization: String, measurement: String, tags: [(key: String, value: String)], fields: [(name: String, value: Double)], timestamp: Int64) {
        self.organization = organization
        self.measurement = measurement
        self.tags = tags
        self.fields = fields
        self.timestamp = timestamp
    }
}

/// Why samples were not stored; stable identifiers used as metric labels.
public enum SampleRejection: String, Sendable, CaseIterable {
    case tooOld = "too_old"
    case tooFarInFuture = "too_far_in_future"
    case seriesLimit = "series_limit"
    /// A new field name of an organization at its field-name limit, or of a full dictionary.
    case fieldLimit = "field_limit"
    /// The sample's day is already sealed into a day rollup (only after `--max-sample-age` grew).
    case daySealed = "day_sealed"
}

/// What a write did.
public struct WriteOutcome: Sendable, Equatable {
    /// Field samples committed.
    public var stored = 0
    /// Field samples refused, by reason.
    public var rejected: [SampleRejection: Int] = [:]
    /// The first refusal, for the error message.
    public var firstRejection: String?

    public var rejectedTotal: Int { rejected.values.reduce(0, +) }

    mutating func reject(_ reason: SampleRejection, _ samples: Int, _ message: @autoclosure () -> String) {
        rejected[reason, default: 0] += samples
        if firstRejection == nil { firstRejection = message() }
    }
}

/// Settings of the store.
public struct TimeSeriesSettings: Sendable {
    /// Oldest accepted sample, relative to now (`--max-sample-age`, default 48 h).
    public var maxSampleAge: TimeInterval = 48 * 3600
    /// Furthest accepted future sample (10 minutes).
    public var maxFutureSkew: TimeInterval = 600
    /// Series per organization (`--max-series-per-org`).
    public var maxSeriesPerOrganization = 1_000_000
    /// Most distinct field names per organization (`--max-fields-per-org`): field ids come from
    /// one 16-bit dictionary, which no tenant may take from the others.
    public var maxFieldsPerOrganization = 1_000
    /// Pending samples that make the flusher write them out without waiting for `flushInterval`.
    public var flushSamples = 512 << 10
    /// Longest time an accepted sample waits in memory before it is flushed into its block.
    public var flushInterval: Duration = .seconds(2)
    /// Pending samples beyond which a write flushes before it is logged (bounds memory when the
    /// flusher falls behind); when that flush fails, the write is refused with
    /// ``TimeSeriesError/backlogged(pending:underlying:)`` (HTTP 503 with `Retry-After`).
    public var maxPendingSamples = 2 << 20
    /// Fields whose flushed values are summed per series since the process started (the
    /// traffic counters of `/metrics`), in series of `countedMeasurements`.
    public var countedFields: [String] = []
    /// Measurements whose series' `countedFields` are summed.
    public var countedMeasurements: Set<String> = []
    /// Remote-write destinations (their identities, URLs without credentials): every accepted
    /// write is queued for each in the ``RemoteOutbox`` in the batch that logs it. Empty: no
    /// outbox (and whatever an earlier run queued is discarded at open).
    public var remoteWriteDestinations: [String] = []
    /// Bytes one destination may have queued before writes are refused
    /// (`--remote-write-max-backlog`, 1 GiB).
    public var remoteWriteMaxBacklogBytes = 1 << 30
    /// How long day records are kept (`--retention-day`, 800 days): all-time totals count the
    /// days not older than this at the time of the query.
    public var dayRetention: TimeInterval = TimeSeriesStore.defaultDayRetention

    /// The defaults, as documented on each property.
    public init() {}
}

/// The time-series store: series index, ingest log, sample blocks, sealed day rollups, queries.
///
/// Write path: a write validates its points, resolves series ids, and commits **one** log entry
/// holding all its samples to the `ingest_log` column family (WAL on; fsync when `sync`). When
/// `write` returns the samples are durable against a process crash; they are also appended to an
/// in-memory buffer (``PendingSamples``, in arrival order). ``flush()`` groups the buffer by
/// series and hour and writes one merge per block into the `blocks` column family, and deletes
/// the log entries it covered, in one
/// atomic batch; opening the store replays the log entries left by a crash. Reads see the buffer
/// and the blocks together, so a sample is visible as soon as its write returns.
///
/// Rollups: minutes are computed from blocks; a day is computed from its blocks until it can no
/// longer change (its end is older than `maxSampleAge`), when ``sealDays(now:)`` writes its
/// rollups into the `day` column family, which outlives the blocks.
/// Thread-safety: `Sendable`; writes and reads may run concurrently; flushes are serialised.
public final class TimeSeriesStore: Sendable {
    /// Column families the store uses, with their options. Blocks older than `minuteRetention`
    /// (`--retention-minute`, 35 days) and day records older than `dayRetention`
    /// (`--retention-day`, 800 days) are dropped as compactions reach them.
    /// `clock`: the time the retention filters measure age from (tests move it).
    public static func columnFamilies(minuteRetention: TimeInterval = defaultMinuteRetention,
                                      dayRetention: TimeInterval = defaultDayRetention,
                                      clock: @escaping @Sendable () -> Date = { Date() }) -> [ColumnFamilyDescriptor] {
        var log = ColumnFamilyDescriptor(name: Family.log)
        log.bloomBitsPerKey = nil
        log.compression = .none
        log.bottommostCompression = .none
        // Entries live for one flush interval; a small memtable keeps their memory short-lived.
        log.writeBufferBytes = 16 << 20
        var outbox = ColumnFamilyDescriptor(name: RemoteOutbox.familyName)
        outbox.bloomBitsPerKey = nil
        // Entries live until every destination took them, usually well under a second; an entry
        // that outlives its memtable (a receiver lagging or down) is read back once and deleted,
        // so compressing it costs more CPU than its disk is worth (the backlog is bounded).
        outbox.compression = .none
        outbox.bottommostCompression = .none
        outbox.writeBufferBytes = 16 << 20
        // Day records are read in ranges (a year of a fleet's traffic per `/stats/daily`), more
        // than the block cache holds: LZ4 decompresses several times faster than zstd, and
        // 16 KiB blocks mean a quarter of the cache lookups and inserts.
        var day = ColumnFamilyDescriptor(name: Family.day, compactionFilter: RetentionFilter(name: "flashback.retention.day.v1", minutesPerInterval: 1440,
                                                                                            retention: dayRetention, clock: clock))
        day.bottommostCompression = .lz4
        day.blockBytes = 16 << 10
        return [ColumnFamilyDescriptor(name: Family.series),
                log,
                outbox,
                // Format 2's series-major blocks: opened (RocksDB opens every family a database
                // has), emptied into `blocks` at the first open of this version.
                ColumnFamilyDescriptor(name: Family.samples, mergeOperator: SampleBlockMergeOperator(),
                                       compactionFilter: RetentionFilter(minutesPerInterval: 60, retention: minuteRetention, clock: clock)),
                ColumnFamilyDescriptor(name: Family.blocks, mergeOperator: SampleBlockMergeOperator(),
                                       compactionFilter: RetentionFilter(name: "flashback.retention.blocks.v1", layout: .dayMajorHours,
                                                                         minutesPerInterval: 60, retention: minuteRetention, clock: clock)),
                day,
                ColumnFamilyDescriptor(name: Family.totals, compactionFilter: RetentionFilter(name: "flashback.retention.totals.v1", layout: .runningTotalsHead,
                                                                                             minutesPerInterval: 1440, retention: dayRetention, clock: clock))]
    }

    /// How long blocks (samples, minute rollups) are kept by default: 35 days.
    public static let defaultMinuteRetention: TimeInterval = 35 * 86_400
    /// How long sealed day records are kept by default: 800 days.
    public static let defaultDayRetention: TimeInterval = 800 * 86_400

    enum Family {
        static let series = "series"
        static let log = "ingest_log"
        /// Series-major blocks of format 2 (`series ‖ hour`), migrated into `blocks` at open.
        static let samples = "samples"
        static let blocks = "blocks"
        static let day = "day"
        /// Each series' ``RunningTotalsHead``.
        static let totals = "totals"
    }

    /// Bounds the blocks a flush writes as merges bound them.
    static let mergeOperator = SampleBlockMergeOperator()

    /// `series` column family key of the last sealed day (u32 BE days since the epoch).
    static let sealedThroughKey = Array("s/days_sealed_through".utf8)

    struct State {
        var active = PendingSamples()
        /// Samples being written by a flush: still visible to reads until the batch committed.
        var flushing: PendingSamples?
        /// The last flushed buffer, emptied: the next flush makes it `active` again.
        var spare: PendingSamples?
        /// Days up to and including this one are sealed (`nil`: none yet): writes into them are
        /// refused from the moment ``sealDays(now:)`` starts.
        var sealedThroughDay: UInt32?
        /// Days up to and including this one have their day records and heads written: reads
        /// take them from there, the days after from their blocks. Behind `sealedThroughDay`
        /// while a seal is being written.
        var readableThroughDay: UInt32?
        /// Days flushes wrote blocks into since the last ``settle()``.
        var touchedDays: ClosedRange<UInt32>?
        /// The days of the `blocks` family (from its first and last key at open or after a
        /// retention compaction, widened by every flush): reads skip the days outside.
        var storedDays: ClosedRange<UInt32>?
    }

    public let index: SeriesIndex
    public let settings: TimeSeriesSettings
    /// Writes queued for the remote-write destinations (`nil` when none is configured).
    public let outbox: RemoteOutbox?
    let database: Database
    private let log: ColumnFamily
    let blocks: ColumnFamily
    let days: ColumnFamily
    let totalsFamily: ColumnFamily
    let seriesFamily: ColumnFamily
    let state: Mutex<State>
    private let flushing = Mutex<Void>(())
    private let nextSequence: Atomic<UInt64>
    private let flushCounter = Atomic<Int>(0)
    private let settleCounter = Atomic<Int>(0)
    private let settleCheckCounter = Atomic<Int>(0)
    /// Bytes of merge operands flushes wrote into `blocks` since the last settle.
    private let flushedSinceSettle = Atomic<Int>(0)
    /// Tasks waiting in ``flushed(atLeast:)``: the flush count each needs, by waiter id.
    private let flushWaiters = Mutex<FlushWaiters>(FlushWaiters())
    /// Newest flushed sample per series and field, for the series some query asked about
    /// (``latest(series:fields:now:)``); kept current by every flush.
    /// One entry per (series, field) asked about; `time == Int64.min` records "none found".
    private let latestCache = Mutex<[LatestKey: LatestSample]>([:])
    /// Whether each series seen by a flush belongs to a counted measurement (see
    /// `countedMeasurements`); a series' measurement never changes.
    private let countedSeries = Mutex<[UInt64: Bool]>([:])
    /// Sums of the counted fields per series since start (see `countedFields`).
    private let totals = Mutex<[UInt64: [UInt16: Double]]>([:])
    /// Totals of the open days' blocks per (series, day) that some totals query read; a flush
    /// forgets the (series, day) pairs it writes.
    let openDayTotals = OpenDayTotalsCache()
    /// The running-totals heads totals queries read, until the next seal or retention compaction.
    let headCache = HeadCache()

    /// Flushes that wrote something, since open (for the flush metric).
    public var flushCount: Int { flushCounter.load(ordering: .relaxed) }

    struct FlushWaiters {
        var next = 0
        var waiting: [Int: (count: Int, continuation: CheckedContinuation<Bool, Never>)] = [:]
    }

    /// Waits until `count` flushes that wrote something have happened since open. Returns `true`
    /// then, or `false` if the task was cancelled first (callers bound the wait that way).
    public func flushed(atLeast count: Int) async -> Bool {
        let id = flushWaiters.withLock { waiters in
            defer { waiters.next += 1 }
            return waiters.next
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let result: Bool? = flushWaiters.withLock { waiters in
                    if flushCounter.load(ordering: .acquiring) >= count { return true }
                    if Task.isCancelled { return false }
                    waiters.waiting[id] = (count, continuation)
                    return nil
                }
                if let result { continuation.resume(returning: result) }
            }
        } onCancel: {
            flushWaiters.withLock { $0.waiting.removeValue(forKey: id) }?.continuation.resume(returning: false)
        }
    }

    private func wakeFlushWaiters() {
        let done = flushCounter.load(ordering: .acquiring)
        let ready = flushWaiters.withLock { waiters -> [CheckedContinuation<Bool, Never>] in
            let ids = waiters.waiting.filter { $0.value.count <= done }.map(\.key)
            return ids.compactMap { waiters.waiting.removeValue(forKey: $0)?.continuation }
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Opens the store in `database` (its column families must exist) and replays the ingest log left by a crash.
    public init(database: Database, settings: TimeSeriesSettings = TimeSeriesSettings(),
                discardedOutboxEntries: (Int) -> Void = { _ in }) throws {
        self.database = database
        self.settings = settings
        log = try database.columnFamily(Family.log)
        blocks = try database.columnFamily(Family.blocks)
        days = try database.columnFamily(Family.day)
        totalsFamily = try database.columnFamily(Family.totals)
        seriesFamily = try database.columnFamily(Family.series)
        index = try SeriesIndex(database: database, family: seriesFamily, maxSeriesPerOrganization: settings.maxSeriesPerOrganization,
                                maxFieldsPerOrganization: settings.maxFieldsPerOrganization)
        var initial = State()
        if let sealed = try database.get(Self.sealedThroughKey, in: seriesFamily), sealed.count == 4 {
            initial.sealedThroughDay = sealed.reduce(0) { $0 << 8 | UInt32($1) }
            initial.readableThroughDay = initial.sealedThroughDay
        }
        // Replay what a crash left in the log: those writes were acknowledged.
        var last: UInt64 = 0
        try database.scan(log) { key, value in
            guard key.count == 8 else { return true }
            let sequence = readBigEndian(UInt64.self, key, at: 0)
            guard IngestLogEntry.decodePoints(value, { series, time, fields in
                initial.active.add(series: series, timestamp: time, fields: (0..<fields.count).map { fields[$0] })
            }) else {
                throw TimeSeriesError.corruptLogEntry(sequence: sequence)
            }
            initial.active.recordLog(sequence)
            last = max(last, sequence)
            return true
        }
        try Self.migrateSeriesMajorBlocks(database, from: try database.columnFamily(Family.samples), into: blocks)
        try Self.addRunningTotals(database, days: days, heads: totalsFamily, series: seriesFamily)
        initial.storedDays = try Self.storedDays(database, blocks)
        outbox = try RemoteOutbox.open(database: database, destinations: settings.remoteWriteDestinations,
                                       maxBacklogBytes: settings.remoteWriteMaxBacklogBytes, discarded: discardedOutboxEntries)
        state = Mutex(initial)
        nextSequence = Atomic(max(last, outbox?.newestSequenceAtOpen ?? 0) + 1)
    }

    /// Moves the blocks of format 2's `samples` family (`series ‖ hour` keys) into `blocks`, as
    /// merges, deleting each old key in the same batch: a crash midway leaves every sample in
    /// one family or both, and merging a block twice changes nothing (blocks are unions), so
    /// the next open simply carries on. Returns the blocks moved.
    @discardableResult
    static func migrateSeriesMajorBlocks(_ database: Database, from old: ColumnFamily, into blocks: ColumnFamily) throws -> Int {
        var moved = 0
        var writer = ChunkedWriter(database: database)
        var key = [UInt8](repeating: 0, count: BlockKey.size)
        try database.scan(old) { oldKey, value in
            guard oldKey.count == 12 else { return true }
            BlockKey(series: readBigEndian(UInt64.self, oldKey, at: 0), hour: readBigEndian(UInt32.self, oldKey, at: 8)).write(into: &key)
            writer.batch.merge(key, Array(value), in: blocks)
            writer.batch.delete(Array(oldKey), in: old)
            moved += 1
            try writer.added()
            return true
        }
        guard moved > 0 else { return 0 }
        try writer.finish()
        // Drop the tombstones and the old files now rather than at some later compaction.
        try database.compact(old)
        return moved
    }

    /// Log entries replayed at open and not yet flushed, plus those written since.
    public var pendingLogEntries: Int { state.withLock { $0.active.logSequences.count + ($0.flushing?.logSequences.count ?? 0) } }

    /// Samples accepted and not yet flushed into blocks.
    public var pendingSamples: Int { state.withLock { $0.active.sampleCount + ($0.flushing?.sampleCount ?? 0) } }

    /// Forces a compaction of blocks, day records and running-totals heads, which applies the
    /// retention filters.
    public func enforceRetention() throws {
        try database.compact(blocks)
        try database.compact(days)
        try database.compact(totalsFamily)
        headCache.clear()
        // Under the flush lock: no flush widens the range between the read and the store.
        try flushing.withLock { _ in
            let stored = try Self.storedDays(database, blocks)
            state.withLock { $0.storedDays = stored }
        }
    }

    /// Validates, logs and buffers `points`.
    /// - Parameter sync: fsync the WAL before returning (power-loss durability).
    public func write(_ points: [SeriesPoint], now: Date, sync: Bool) throws -> WriteOutcome {
        try write(SeriesBatch(points), now: now, sync: sync)
    }

    /// Validates, logs and buffers the points of `batch`.
    /// - Parameters:
    ///   - sync: fsync the WAL before returning (power-loss durability).
    ///   - seriesResolved: told the id of each entry of `batch.newSeries` (by its index) that was
    ///     found or created, so that the writer can name the series by id next time.
    public func write(_ batch: SeriesBatch, now: Date, sync: Bool,
                      seriesResolved: (_ newSeries: Int, _ id: UInt64) -> Void = { _, _ in }) throws -> WriteOutcome {
        var outcome = WriteOutcome()
        let nowNanos = Int64(saturatingNanosecondsOf: now)
        let ageLimit = nowNanos.subtractingSaturated(Int64(saturating: settings.maxSampleAge * 1e9))
        var oldest = max(0, ageLimit)
        if let sealed = state.withLock({ $0.sealedThroughDay }) {
            oldest = max(oldest, (Int64(sealed) + 1) * 86_400_000_000_000)
        }
        let newest = nowNanos.addingSaturated(Int64(saturating: settings.maxFutureSkew * 1e9))
        // Times first; then the ids of the new series that have a point in time, under one lock.
        var inTime = [Bool](repeating: false, count: batch.points.count)
        var wanted = [Bool](repeating: false, count: batch.newSeries.count)
        for (offset, point) in batch.points.enumerated() {
            if point.timestamp < oldest || point.timestamp > newest {
                let measurement = { self.measurement(of: point, in: batch) }
                if point.timestamp > newest {
                    outcome.reject(.tooFarInFuture, point.fieldCount, "sample of \(measurement()) is more than \(Int(self.settings.maxFutureSkew / 60)) minutes in the future")
                } else if point.timestamp >= ageLimit {
                    outcome.reject(.daySealed, point.fieldCount, "sample of \(measurement()) falls in a day whose rollup is already sealed")
                } else {
                    outcome.reject(.tooOld, point.fieldCount, "sample of \(measurement()) is older than the accepted \(Int(self.settings.maxSampleAge / 3600)) h")
                }
                continue
            }
            inTime[offset] = true
            if point.newSeries >= 0 { wanted[Int(point.newSeries)] = true }
        }
        let lookups = wanted.indices.filter { wanted[$0] }
        var resolved = [Result<UInt64, SeriesLimitError>?](repeating: nil, count: batch.newSeries.count)
        for (series, result) in zip(lookups, try index.ids(for: lookups.map { batch.newSeries[$0].key })) {
            resolved[series] = result
            if case .success(let id) = result { seriesResolved(series, id) }
        }
        // Field ids on first use per (name, writing organization): a name whose every sample was
        // refused gets none, and each organization's names count against its own budget.
        let writers = max(1, batch.organizations.count)
        var fieldIDs = [UInt16?](repeating: nil, count: batch.fieldNames.count * writers)
        var entry = IngestLogEntry(reservingPoints: batch.points.count)
        var accepted = PendingSamples(reservingSamples: batch.fields.count)
        var values: [(UInt16, Double)] = []
        for (offset, point) in batch.points.enumerated() where inTime[offset] {
            let id: UInt64
            if point.newSeries < 0 {
                id = point.seriesID
            } else {
                switch resolved[Int(point.newSeries)] {
                case .success(let known): id = known
                case .failure(let error):
                    outcome.reject(.seriesLimit, point.fieldCount, "\(error)")
                    continue
                case nil: continue
                }
            }
            values.removeAll(keepingCapacity: true)
            let writer = min(Int(point.organization), writers - 1)
            var refusal: SeriesLimitError?
            for field in batch.fields[Int(point.fieldStart)..<Int(point.fieldEnd)] {
                let slot = Int(field.name) * writers + writer
                let fieldID: UInt16
                if let known = fieldIDs[slot] {
                    fieldID = known
                } else {
                    do {
                        fieldID = try index.fieldID(batch.fieldNames[Int(field.name)], organization: batch.organization(of: point))
                    } catch let error as SeriesLimitError {
                        refusal = error
                        break
                    }
                    fieldIDs[slot] = fieldID
                }
                values.append((fieldID, field.value))
            }
            if let refusal {
                outcome.reject(.fieldLimit, point.fieldCount, "\(refusal)")
                continue
            }
            entry.append(series: id, timestamp: point.timestamp, fields: values[...])
            accepted.add(series: id, timestamp: point.timestamp, fields: values)
            outcome.stored += point.fieldCount
        }
        guard accepted.pointCount > 0 else { return outcome }
        // Memory bound: beyond `maxPendingSamples` the writer flushes before logging anything;
        // if that fails (the flusher is failing too), the write is refused, not queued.
        if pendingSamples >= settings.maxPendingSamples {
            do {
                try flush()
            } catch {
                throw TimeSeriesError.backlogged(pending: pendingSamples, underlying: "\(error)")
            }
        }
        let sequence: UInt64
        if let outbox {
            if let full = outbox.fullDestination {
                throw TimeSeriesError.remoteBacklogFull(destination: full.name, bytes: full.backlog.bytes)
            }
            // The log entry and the outbox entry commit together or not at all.
            sequence = outbox.reserve { nextSequence.add(1, ordering: .relaxed).oldValue }
            let batch = WriteBatch()
            batch.put(withUnsafeBytes(of: sequence.bigEndian) { Array($0) }, entry.bytes, in: log)
            let size = outbox.put(into: batch, sequence: sequence, logEntry: entry.bytes, samples: outcome.stored, now: now)
            do {
                try database.write(batch, sync: sync)
            } catch {
                outbox.finish(sequence, size: 0, samples: 0, committed: false)
                throw error
            }
            outbox.finish(sequence, size: size, samples: outcome.stored, committed: true)
        } else {
            sequence = nextSequence.add(1, ordering: .relaxed).oldValue
            try database.put(withUnsafeBytes(of: sequence.bigEndian) { Array($0) }, entry.bytes, in: log, sync: sync)
        }
        accepted.recordLog(sequence)
        state.withLock { state in state.active.append(accepted) }
        return outcome
    }

    /// The measurement of a batch point's series, for messages.
    private func measurement(of point: SeriesBatch.Point, in batch: SeriesBatch) -> String {
        if point.newSeries >= 0 { return batch.newSeries[Int(point.newSeries)].key.measurement }
        return index.series(id: point.seriesID)?.measurement ?? "series \(point.seriesID)"
    }

    /// After a burst of writes, once everything pending is flushed: writes the memtables out, so
    /// that RocksDB can delete the write-ahead-log files holding them, and compacts the ingest log
    /// and the outbox, whose entries are deleted by then, so their tombstones and the entries that
    /// reached SST files before their delete go too (cheap: those two families hold almost nothing
    /// live), and the days of `blocks` the burst wrote, so that each block is one value again
    /// instead of a value and the merge operands of every flush (only those days' files are
    /// rewritten: keys are day-major). Without it the bytes stay on disk until the next burst
    /// fills the memtables again.
    public func settle() throws {
        flushedSinceSettle.store(0, ordering: .relaxed)
        try database.flush()
        try database.compact(log)
        // Fold the merge operands of the days the burst wrote into their blocks (one value a
        // block, compressed at the bottommost level); older days' files are not touched.
        if let touched = state.withLock({ state -> ClosedRange<UInt32>? in
            defer { state.touchedDays = nil }
            return state.touchedDays
        }) {
            try database.compact(blocks, from: BlockKey.start(ofDay: touched.lowerBound),
                                 to: BlockKey.start(ofDay: touched.upperBound == .max ? .max : touched.upperBound + 1))
        }
        if outbox != nil { try database.compact(database.columnFamily(RemoteOutbox.familyName)) }
        settleCounter.add(1, ordering: .relaxed)
    }

    /// Bytes ``settle()`` would free, write out or fold: the memtables of every family, the
    /// ingest log's SST files and the merge operands flushed into blocks since the last settle
    /// (a burst that ended just after RocksDB flushed its memtables leaves them in level 0).
    /// Small between the sparse reports of a quiet fleet (no settle needed); large after a
    /// burst.
    public var settleableBytes: UInt64 {
        let memtables = database.integerProperty("rocksdb.cur-size-all-mem-tables") ?? 0
        return memtables + (database.integerProperty("rocksdb.total-sst-files-size", of: log) ?? 0)
            + UInt64(flushedSinceSettle.load(ordering: .relaxed))
    }

    /// How many times ``settle()`` ran.
    public var settleCount: Int { settleCounter.load(ordering: .relaxed) }

    /// Settles when ``settleableBytes`` reach `threshold` (after a burst, not between a quiet
    /// fleet's reports); returns whether it did. Counted in ``settleChecks`` either way.
    @discardableResult
    public func settle(ifAbove threshold: UInt64) throws -> Bool {
        settleCheckCounter.add(1, ordering: .relaxed)
        guard settleableBytes >= threshold else { return false }
        try settle()
        return true
    }

    /// How many times ``settle(ifAbove:)`` was asked, settling or not.
    public var settleChecks: Int { settleCheckCounter.load(ordering: .relaxed) }

    /// Flushes when the buffer is due: `flushSamples` pending, or the oldest pending sample
    /// waited `flushInterval`. Returns whether it flushed.
    @discardableResult
    public func flushIfDue() throws -> Bool {
        let due = state.withLock { state in
            guard let since = state.active.since else { return !state.active.logSequences.isEmpty }
            return state.active.sampleCount >= settings.flushSamples || ContinuousClock.now - since >= settings.flushInterval
        }
        guard due else { return false }
        try flush()
        return true
    }

    /// Writes every pending sample into its series-hour block (one merge per block, keys in
    /// order) and deletes the log entries that held them, in one atomic batch.
    public func flush() throws {
        try flushing.withLock { _ in
            var pending = state.withLock { state -> PendingSamples in
                let taken = state.active
                state.active = state.spare.take() ?? PendingSamples(reservingSamples: settings.flushSamples)
                state.flushing = taken
                return taken
            }
            guard !pending.isEmpty else {
                state.withLock { $0.flushing = nil }
                return
            }
            do {
                let batch = WriteBatch()
                var key = [UInt8](repeating: 0, count: BlockKey.size)
                var touched = state.withLock { $0.touchedDays }
                var blockBytes = 0
                let counted = settings.countedFields.compactMap { index.existingFieldID($0) }
                var sums: [UInt64: [UInt16: Double]] = [:]
                let order = pending.groupedBySeriesInTimeOrder()
                var written: [OpenDayTotalsCache.Key] = []
                var samples: [FieldSample] = []
                var countsSeries = (series: UInt64.max, counts: false)
                var position = 0
                while position < order.count {
                    // One run of points of the same series and hour: one block.
                    let series = pending.series[order[position]]
                    let hour = RollupKey.hour(ofNanoseconds: pending.times[order[position]])
                    samples.removeAll(keepingCapacity: true)
                    while position < order.count, pending.series[order[position]] == series,
                          RollupKey.hour(ofNanoseconds: pending.times[order[position]]) == hour {
                        pending.appendSamples(of: order[position], to: &samples)
                        position += 1
                    }
                    if countsSeries.series != series { countsSeries = (series, !counted.isEmpty && isCounted(series)) }
                    BlockKey(series: series, hour: hour).write(into: &key)
                    let day = hour / 24
                    if written.last != OpenDayTotalsCache.Key(series: series, day: day) { written.append(.init(series: series, day: day)) }
                    touched = touched.map { min($0.lowerBound, day)...max($0.upperBound, day) } ?? day...day
                    // The block unions repeated (field, time) pairs, so a retry within one
                    // flush interval counts once in the totals too.
                    let block = Self.mergeOperator.capped(SampleBlock(samples: samples))
                    if countsSeries.counts, block.samples.contains(where: { counted.contains($0.field) }) {
                        // A retry of a sample an earlier flush stored counts once: read what
                        // the block holds (before this batch) and skip those.
                        let stored = try database.get(key, in: blocks).flatMap { SampleBlock(decoding: $0) }
                        var local = [Double](repeating: 0, count: counted.count)
                        for sample in block.samples where sample.value.isFinite {
                            guard let slot = counted.firstIndex(of: sample.field) else { continue }
                            if let stored, stored.contains(field: sample.field, timestamp: sample.timestamp) { continue }
                            local[slot] += sample.value
                        }
                        for (slot, field) in counted.enumerated() where local[slot] != 0 {
                            sums[series, default: [:]][field, default: 0] += local[slot]
                        }
                    }
                    let encoded = block.encoded()
                    blockBytes += encoded.count
                    batch.merge(key, encoded, in: blocks)
                }
                for sequence in pending.logSequences {
                    batch.delete(withUnsafeBytes(of: sequence.bigEndian) { Array($0) }, in: log)
                }
                // No fsync needed: the WAL keeps batches in order, so if this batch is lost the log
                // entries it deletes are still there and are replayed.
                try database.write(batch)
                flushedSinceSettle.add(blockBytes, ordering: .relaxed)
                // Before the samples leave `flushing`: until then totals read these series
                // from the buffer and the blocks, not from the cache.
                openDayTotals.forget(written)
                // Before the samples leave `flushing`, so a reader always finds them somewhere.
                updateLatest(with: pending, order: order)
                if !sums.isEmpty {
                    totals.withLock { totals in
                        for (id, fields) in sums { totals[id, default: [:]].merge(fields, uniquingKeysWith: +) }
                    }
                }
                state.withLock { state in
                    state.flushing = nil
                    // No reader holds the buffer now: emptied, it is the next flush's `active`.
                    pending.removeAll()
                    state.spare = pending
                    if let touched {
                        state.touchedDays = state.touchedDays.map { min($0.lowerBound, touched.lowerBound)...max($0.upperBound, touched.upperBound) } ?? touched
                        state.storedDays = state.storedDays.map { min($0.lowerBound, touched.lowerBound)...max($0.upperBound, touched.upperBound) } ?? touched
                    }
                }
                flushCounter.add(1, ordering: .releasing)
                wakeFlushWaiters()
            } catch {
                // Put the samples back in front of anything that arrived meanwhile.
                state.withLock { state in
                    var restored = pending
                    restored.append(state.active)
                    state.active = restored
                    state.flushing = nil
                }
                throw error
            }
        }
    }

    /// The last day that can no longer change at `now`: its end is older than `maxSampleAge`
    /// (plus a minute for writes in flight).
    public func lastClosedDay(now: Date) -> UInt32? {
        let closedBefore = now.timeIntervalSince1970 - settings.maxSampleAge - 60
        guard closedBefore >= 86_400 else { return nil }
        return UInt32(clamping: Int64(closedBefore) / 86_400 - 1)
    }

    /// Days sealed so far (inclusive), or `nil`.
    public var sealedThroughDay: UInt32? { state.withLock { $0.sealedThroughDay } }

    /// Days whose records reads may use (inclusive), or `nil`: see `State.readableThroughDay`.
    var readableThroughDay: UInt32? { state.withLock { $0.readableThroughDay } }

    /// Seals every closed day not sealed yet: computes each series' rollups for the day from
    /// its blocks and writes them to the `day` column family. Returns the number of records
    /// written. Idempotent: a crash midway recomputes the same records.
    @discardableResult
    public func sealDays(now: Date) throws -> Int {
        guard let closed = lastClosedDay(now: now) else { return 0 }
        let previous = state.withLock { $0.sealedThroughDay }
        if let previous, previous >= closed { return 0 }
        // From here on writes into these days are refused; then flush what was accepted before.
        state.withLock { $0.sealedThroughDay = closed }
        try flush()
        let firstDay = previous.map { $0 + 1 } ?? 0
        var written = 0
        var writer = ChunkedWriter(database: database)
        // One scan: keys come day by day, series by series within a day. Each day is committed
        // before the next is read, so that a record's running totals continue the series'
        // record of its previous sealed day, read back from the `day` family.
        var current: (day: UInt32, series: UInt64)?
        var fields: [UInt16: FieldRollup] = [:]
        var previousRecords = try PreviousDayRecords(database: database, days: days, heads: totalsFamily)
        func emit() throws {
            guard let current, !fields.isEmpty else { return }
            let previous = try previousRecords.previous(series: current.series, before: current.day)
            let record = DayRecord(fields: fields.map { (field: $0.key, rollup: $0.value) }, continuing: previous?.running)
            writer.batch.put(RollupKey(series: current.series, interval: current.day).bytes, record.encoded(), in: days)
            let head = RunningTotalsHead(chainStart: previous?.chainStart ?? current.day, lastDay: current.day, running: record.running ?? [])
            writer.batch.put(RunningTotalsHead.key(series: current.series), head.encoded(), in: totalsFamily)
            written += 1
            try writer.added()
        }
        try database.scan(blocks, lowerBound: BlockKey.start(ofDay: firstDay), upperBound: BlockKey.start(ofDay: closed + 1)) { key, value in
            guard let blockKey = BlockKey(bytes: key), let block = SampleBlock(decoding: value) else { return true }
            let here = (day: blockKey.hour / 24, series: blockKey.series)
            if let current, current != here {
                try emit()
                fields = [:]
                if current.day != here.day {
                    try writer.finish()
                    writer = ChunkedWriter(database: database)
                    previousRecords = try PreviousDayRecords(database: database, days: days, heads: totalsFamily)
                }
            }
            current = here
            for field in block.fields {
                guard let rollup = block.rollup(field: field) else { continue }
                if fields[field] == nil { fields[field] = rollup } else { fields[field]?.merge(rollup) }
            }
            return true
        }
        try emit()
        writer.batch.put(Self.sealedThroughKey, withUnsafeBytes(of: closed.bigEndian) { Array($0) }, in: seriesFamily)
        try writer.finish()
        // Reads move to the records only now: until here they took these days from their
        // blocks (and heads already past the watermark through the day records, see totals).
        state.withLock { $0.readableThroughDay = closed }
        headCache.clear()
        openDayTotals.forget(throughDay: closed)
        return written
    }

    /// One interval of a rollup query.
    public struct RollupRow: Sendable, Equatable {
        /// Start of the interval, Unix seconds.
        public var start: Int64
        public var rollup: FieldRollup

        /// A `RollupRow` from its parts.
        public init(start: Int64, rollup: FieldRollup) {
            self.start = start
            self.rollup = rollup
        }
    }

    /// Rollups of one field of one series between `start` and `end` (Unix seconds, end
    /// exclusive), per minute or per day. Per day, the days are whole: the first is the day
    /// holding `start`. Sealed days come from their day record, the others from their blocks
    /// and the pending samples.
    public func rollups(series: UInt64, field: UInt16, start: Int64, end: Int64, perDay: Bool) throws -> [RollupRow] {
        try rollups(series: series, fields: [field], start: start, end: end, perDay: perDay)[0]
    }

    /// Rollups of several fields of one series (one read of the blocks), in the order of
    /// `fields`; see ``rollups(series:field:start:end:perDay:)``.
    public func rollups(series: UInt64, fields: [UInt16], start: Int64, end: Int64, perDay: Bool) throws -> [[RollupRow]] {
        var rows = [[RollupRow]](repeating: [], count: fields.count)
        guard end > start else { return rows }
        // Clamped to the range whose nanoseconds (and a day beyond) fit in Int64; routes refuse
        // times outside it with a 400 before they get here.
        let startSeconds = UnixTime(clamping: start).seconds
        let endSeconds = UnixTime(clamping: end).seconds
        var fromSeconds = perDay ? startSeconds / 86_400 * 86_400 : startSeconds / 60 * 60
        let toSeconds = perDay ? (endSeconds + 86_399) / 86_400 * 86_400 : (endSeconds + 59) / 60 * 60
        if perDay, let sealed = readableThroughDay, fromSeconds < (Int64(sealed) + 1) * 86_400 {
            let sealedEnd = min(toSeconds, (Int64(sealed) + 1) * 86_400)
            try database.scan(days, lowerBound: RollupKey(series: series, interval: UInt32(clamping: fromSeconds / 86_400)).bytes,
                              upperBound: RollupKey(series: series, interval: UInt32(clamping: sealedEnd / 86_400)).bytes) { key, value in
                guard key.count == 12 else { return true }
                let start = Int64(readBigEndian(UInt32.self, key, at: 8)) * 86_400
                for (index, field) in fields.enumerated() {
                    if let rollup = DayRecord.rollup(field: field, in: value) {
                        rows[index].append(RollupRow(start: start, rollup: rollup))
                    }
                }
                return true
            }
            fromSeconds = sealedEnd
        }
        guard toSeconds > fromSeconds else { return rows }
        let fromHour = UInt32(clamping: fromSeconds / 3600)
        let toHour = UInt32(clamping: (toSeconds + 3599) / 3600)
        // Pending samples first: a sample leaving the buffer is in the blocks by the time the
        // scan below reads them (merging both is harmless: blocks are unions).
        // Grouped by block span, as the stored blocks are.
        let pending = state.withLock { state in
            var spans: [UInt32: [FieldSample]] = [:]
            for (hour, samples) in state.flushing?.samples(series: series, fromHour: fromHour, toHour: toHour) ?? [:] {
                spans[BlockKey.spanStart(hour), default: []] += samples
            }
            for (hour, samples) in state.active.samples(series: series, fromHour: fromHour, toHour: toHour) {
                spans[BlockKey.spanStart(hour), default: []] += samples
            }
            return spans
        }
        var stored: [UInt32: SampleBlock] = [:]
        try scanBlocks(series: series, fromHour: fromHour, toHour: toHour) { spanStart, block in stored[spanStart] = block }
        let fromNanos = fromSeconds * 1_000_000_000
        let toNanos = toSeconds * 1_000_000_000
        for span in Set(stored.keys).union(pending.keys).sorted() {
            var block = stored[span] ?? SampleBlock(samples: [])
            if let buffered = pending[span] { block = SampleBlock(samples: block.samples + buffered) }
            for (index, field) in fields.enumerated() {
                for (minute, rollup) in block.minuteRollups(field: field, fromNanos: fromNanos, toNanos: toNanos) {
                    let intervalStart = perDay ? Int64(minute / 1440) * 86_400 : Int64(minute) * 60
                    if perDay, let last = rows[index].last, last.start == intervalStart {
                        rows[index][rows[index].count - 1].rollup.merge(rollup)
                    } else {
                        rows[index].append(RollupRow(start: intervalStart, rollup: rollup))
                    }
                }
            }
        }
        return rows
    }

    /// The stored blocks of `series` that hold hours from `fromHour` up to `toHour` (exclusive),
    /// oldest first, each with the first hour of its span: one bounded scan per day, over the
    /// days that hold blocks at all.
    func scanBlocks(series: UInt64, fromHour: UInt32, toHour: UInt32, _ body: (_ spanStart: UInt32, _ block: SampleBlock) throws -> Void) throws {
        guard toHour > fromHour, let stored = state.withLock({ $0.storedDays }) else { return }
        let firstDay = max(fromHour / 24, stored.lowerBound)
        let lastDay = min((toHour - 1) / 24, stored.upperBound)
        guard firstDay <= lastDay else { return }
        for day in firstDay...lastDay {
            let low = UInt8(day == fromHour / 24 ? fromHour % 24 / BlockKey.hoursPerBlock : 0)
            let high = day == (toHour - 1) / 24 ? UInt8((toHour - 1) % 24 / BlockKey.hoursPerBlock) + 1 : BlockKey.spansPerDay
            try database.scan(blocks, lowerBound: BlockKey.bound(day: day, series: series, span: low),
                              upperBound: BlockKey.bound(day: day, series: series, span: high)) { key, value in
                guard let blockKey = BlockKey(bytes: key), let block = SampleBlock(decoding: value) else { return true }
                try body(blockKey.hour, block)
                return true
            }
        }
    }

    /// The first and last day of the `blocks` family (two seeks), or `nil` when it is empty.
    private static func storedDays(_ database: Database, _ blocks: ColumnFamily) throws -> ClosedRange<UInt32>? {
        let iterator = try database.makeIterator(blocks)
        iterator.seekToFirst()
        guard iterator.isValid, let first = iterator.withKey({ BlockKey(bytes: $0) }) else { return nil }
        iterator.seekToLast()
        let last = iterator.isValid ? iterator.withKey { BlockKey(bytes: $0) } : nil
        try iterator.checkError()
        return (first.hour / 24)...max(first.hour / 24, (last?.hour ?? first.hour) / 24)
    }

    // MARK: Latest samples

    /// The newest sample of each of `fields` in each of `series` (`nil` when there is none in
    /// the last `maxSampleAge` + 1 h). Answers from the pending buffer and a cache of flushed
    /// samples, so a steady dashboard query costs no disk reads; a series asked about for the
    /// first time is read from its blocks, newest hour first.
    public func latest(series ids: [UInt64], fields: [UInt16], now: Date) throws -> [[LatestSample?]] {
        let flat = try latestFlat(series: ids, fields: fields, now: now)
        return ids.indices.map { Array(flat[$0 * fields.count..<($0 + 1) * fields.count]) }
    }

    /// ``latest(series:fields:now:)`` in one array: the sample of series `i`, field `j` at
    /// `i * fields.count + j`.
    public func latestFlat(series ids: [UInt64], fields: [UInt16], now: Date) throws -> [LatestSample?] {
        let width = fields.count
        var newest = [LatestSample?](repeating: nil, count: ids.count * width)
        // The buffer before the cache: a flush updates the cache before the samples leave the
        // buffer, so reading in this order finds every sample in at least one of them.
        state.withLock { state in
            func fold(_ buffer: inout PendingSamples) {
                guard buffer.sampleCount > 0 else { return }
                for (offset, id) in ids.enumerated() {
                    buffer.forEachSample(series: id) { sample in
                        guard let index = fields.firstIndex(of: sample.field) else { return }
                        let slot = offset * width + index
                        if newest[slot].map({ sample.timestamp >= $0.time }) ?? true {
                            newest[slot] = LatestSample(time: sample.timestamp, value: sample.value)
                        }
                    }
                }
            }
            if state.flushing != nil { fold(&state.flushing!) }
            fold(&state.active)
        }
        let missing = foldCached(ids, ids.indices, fields: fields, into: &newest)
        if !missing.isEmpty {
            // Series asked about for the first time: read their blocks, then fold them in too.
            try loadLatest(missing.map { ids[$0] }, fields: fields, now: now)
            _ = foldCached(ids, missing, fields: fields, into: &newest)
        }
        return newest
    }

    /// Folds the cached samples of the series of `ids` at `offsets` into `newest` where newer;
    /// returns the offsets of the series with a field not cached yet.
    private func foldCached(_ ids: [UInt64], _ offsets: some Sequence<Int>, fields: [UInt16], into newest: inout [LatestSample?]) -> [Int] {
        let width = fields.count
        var missing: [Int] = []
        latestCache.withLock { cache in
            for offset in offsets {
                var complete = true
                for (index, field) in fields.enumerated() {
                    guard let flushed = cache[LatestKey(series: ids[offset], field: field)] else {
                        complete = false
                        continue
                    }
                    guard flushed.time != Int64.min else { continue }
                    let slot = offset * width + index
                    if let buffered = newest[slot], buffered.time >= flushed.time { continue }
                    newest[slot] = flushed
                }
                if !complete { missing.append(offset) }
            }
        }
        return missing
    }

    /// Reads the newest flushed sample of `fields` of `ids` into the cache; under the flush
    /// lock, so no flush slips between the read and the cache update.
    private func loadLatest(_ ids: [UInt64], fields: [UInt16], now: Date) throws {
        let newestHour = RollupKey.hour(ofNanoseconds: Int64(saturatingNanosecondsOf: now.addingTimeInterval(settings.maxFutureSkew)))
        let lookback = UInt32(settings.maxSampleAge / 3600) + 2
        let oldestHour = newestHour > lookback ? newestHour - lookback : 0
        try flushing.withLock { _ in
            var loaded: [LatestKey: LatestSample] = [:]
            for id in ids {
                var found: [UInt16: LatestSample] = [:]
                var hour = BlockKey.spanStart(newestHour)
                while found.count < fields.count {
                    if let bytes = try database.get(BlockKey(series: id, hour: hour).bytes, in: blocks),
                       let block = SampleBlock(decoding: bytes) {
                        // Sorted by (field, time): a field's last sample in the block is its newest.
                        var inBlock: [UInt16: LatestSample] = [:]
                        for sample in block.samples where found[sample.field] == nil && fields.contains(sample.field) {
                            inBlock[sample.field] = LatestSample(time: sample.timestamp, value: sample.value)
                        }
                        found.merge(inBlock) { current, _ in current }
                    }
                    guard hour > oldestHour, hour >= BlockKey.hoursPerBlock else { break }
                    hour -= BlockKey.hoursPerBlock
                }
                for field in fields {
                    loaded[LatestKey(series: id, field: field)] = found[field] ?? LatestSample(time: Int64.min, value: 0)
                }
            }
            latestCache.withLock { cache in
                if cache.count + loaded.count > Self.latestCacheLimit { cache.removeAll() }
                // An entry already there came from a flush since, and is as new or newer.
                cache.merge(loaded) { current, _ in current }
            }
        }
    }

    /// Most (series, field) entries the latest-sample cache holds before it starts over.
    static let latestCacheLimit = 4_000_000

    /// Whether the series' measurement is one of `countedMeasurements`.
    private func isCounted(_ series: UInt64) -> Bool {
        if let known = countedSeries.withLock({ $0[series] }) { return known }
        let counted = index.series(id: series).map { settings.countedMeasurements.contains($0.measurement) } ?? false
        countedSeries.withLock { $0[series] = counted }
        return counted
    }

    /// Sums of the counted fields of flushed samples per series since the process started. A
    /// sample sent again counts once, whether the copies meet in one flush or a later flush
    /// finds the first copy in its block; when the copies' values differ, this keeps the first
    /// counted and the rollups the later one.
    public func countedTotals() -> [UInt64: [UInt16: Double]] {
        totals.withLock { $0 }
    }

    /// The age of the oldest sample waiting for a flush (the lag of the rollups behind
    /// ingest), or zero.
    public var rollupLag: Duration {
        state.withLock { state in state.active.since.map { ContinuousClock.now - $0 } ?? .zero }
    }

    /// Folds flushed samples into the cache, for the series and fields it holds.
    /// `order`: the points of `pending` grouped by series (``PendingSamples/groupedBySeriesInTimeOrder()``).
    private func updateLatest(with pending: PendingSamples, order: [Int]) {
        latestCache.withLock { cache in
            guard !cache.isEmpty else { return }
            var newest: [(field: UInt16, sample: LatestSample)] = []
            var position = 0
            while position < order.count {
                // The newest sample per field of one series (a handful of fields), then one
                // cache lookup for each.
                let id = pending.series[order[position]]
                newest.removeAll(keepingCapacity: true)
                while position < order.count, pending.series[order[position]] == id {
                    let point = order[position]
                    let time = pending.times[point]
                    for offset in pending.fieldRange(of: point) {
                        let sample = LatestSample(time: time, value: pending.values[offset])
                        if let slot = newest.firstIndex(where: { $0.field == pending.fields[offset] }) {
                            if time >= newest[slot].sample.time { newest[slot].sample = sample }
                        } else {
                            newest.append((pending.fields[offset], sample))
                        }
                    }
                    position += 1
                }
                for (field, sample) in newest {
                    cache[LatestKey(series: id, field: field)]?.replace(ifOlderThan: sample)
                }
            }
        }
    }
}

/// A write batch written out every 4,096 entries: large rewrites (sealing days, the format 2
/// upgrade) without one huge batch in memory.
struct ChunkedWriter {
    let database: Database
    var batch = WriteBatch()
    private var entries = 0

    init(database: Database) {
        self.database = database
    }

    /// Counts an entry added to `batch`; writes the batch out when it is full.
    mutating func added() throws {
        entries += 1
        guard entries >= 4096 else { return }
        try database.write(batch)
        batch = WriteBatch()
        entries = 0
    }

    /// Writes what is left.
    func finish() throws {
        try database.write(batch)
    }
}

/// A (series, field) pair: the latest-sample cache's key.
struct LatestKey: Hashable {
    var series: UInt64
    var field: UInt16
}

/// One sample: when (nanoseconds since the Unix epoch) and what.
public struct LatestSample: Sendable, Equatable {
    public var time: Int64
    public var value: Double

    /// A `LatestSample` from its parts.
    public init(time: Int64, value: Double) {
        self.time = time
        self.value = value
    }

    /// Takes `newer` when it is at least as new (the later of two writes at one time wins).
    mutating func replace(ifOlderThan newer: LatestSample) {
        if newer.time >= time { self = newer }
    }
}

/// A store-level failure.
public enum TimeSeriesError: Error, CustomStringConvertible {
    /// A log entry that does not decode: the log was damaged.
    case corruptLogEntry(sequence: UInt64)
    /// Too many samples wait for a flush that keeps failing; nothing of the write was stored.
    case backlogged(pending: Int, underlying: String)
    /// A remote-write destination's queue is full (`--remote-write-max-backlog`); nothing of
    /// the write was stored.
    case remoteBacklogFull(destination: String, bytes: Int)

    public var description: String {
        switch self {
        case .corruptLogEntry(let sequence): return "ingest log entry \(sequence) is damaged; the database needs repair"
        case .backlogged(let pending, let underlying): return "\(pending) samples wait for a flush that fails (\(underlying)); retry later"
        case .remoteBacklogFull(let destination, let bytes):
            return "the remote-write queue of \(destination) is full (\(bytes) bytes); retry later"
        }
    }
}

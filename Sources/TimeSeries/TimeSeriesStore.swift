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
}

/// Settings of the store.
public struct TimeSeriesSettings: Sendable {
    /// Oldest accepted sample, relative to now (`--max-sample-age`, default 48 h).
    public var maxSampleAge: TimeInterval = 48 * 3600
    /// Furthest accepted future sample (10 minutes).
    public var maxFutureSkew: TimeInterval = 600
    /// Series per organization (`--max-series-per-org`).
    public var maxSeriesPerOrganization = 1_000_000

    public init() {}
}

/// The time-series store: series index, minute records, rollup queries.
///
/// Write path: samples are grouped by (series, minute) and each group becomes one merge operand
/// of a ``MinuteRecord``; one `WriteBatch` per call, WAL on (fsync when `sync`). When `write`
/// returns, the samples are durable against a process crash. Day rollups are the merge of the
/// day's minute rollups, computed from the minute records.
/// Thread-safety: `Sendable`; concurrent writes are ordered by RocksDB.
public final class TimeSeriesStore: Sendable {
    /// Column families the store uses, with their options; minute records older than
    /// `minuteRetention` are dropped as compactions reach them (`--retention-minute`, 35 days).
    public static func columnFamilies(minuteRetention: TimeInterval = 35 * 86_400) -> [ColumnFamilyDescriptor] {
        [ColumnFamilyDescriptor(name: "series"),
         ColumnFamilyDescriptor(name: "minute", mergeOperator: MinuteMergeOperator(),
                                compactionFilter: RetentionFilter(retention: minuteRetention))]
    }

    /// Forces a compaction of the minute records, which applies the retention filter to all of them.
    public func enforceRetention() throws {
        try database.compact(minutes)
    }

    public let index: SeriesIndex
    public let settings: TimeSeriesSettings
    private let database: Database
    private let minutes: ColumnFamily

    public init(database: Database, settings: TimeSeriesSettings = TimeSeriesSettings()) throws {
        self.database = database
        self.settings = settings
        minutes = try database.columnFamily("minute")
        index = try SeriesIndex(database: database, family: try database.columnFamily("series"), maxSeriesPerOrganization: settings.maxSeriesPerOrganization)
    }

    /// Validates, groups and commits `points`.
    /// - Parameter sync: fsync the WAL before returning (power-loss durability).
    public func write(_ points: [SeriesPoint], now: Date, sync: Bool) throws -> WriteOutcome {
        var outcome = WriteOutcome()
        let nowNanos = Int64(now.timeIntervalSince1970 * 1e9)
        let oldest = nowNanos - Int64(settings.maxSampleAge * 1e9)
        let newest = nowNanos + Int64(settings.maxFutureSkew * 1e9)
        var groups: [RollupKey: [FieldSample]] = [:]
        for point in points {
            func reject(_ reason: SampleRejection, _ message: String) {
                outcome.rejected[reason, default: 0] += point.fields.count
                if outcome.firstRejection == nil { outcome.firstRejection = message }
            }
            guard point.timestamp >= oldest, point.timestamp >= 0 else {
                reject(.tooOld, "sample of \(point.measurement) is older than the accepted \(Int(settings.maxSampleAge / 3600)) h")
                continue
            }
            guard point.timestamp <= newest else {
                reject(.tooFarInFuture, "sample of \(point.measurement) is more than \(Int(settings.maxFutureSkew / 60)) minutes in the future")
                continue
            }
            let id: UInt64
            do {
                id = try index.id(for: SeriesKey(organization: point.organization, measurement: point.measurement, tags: point.tags))
            } catch let error as SeriesLimitError {
                reject(.seriesLimit, "\(error)")
                continue
            }
            let key = RollupKey(series: id, interval: RollupKey.minute(ofNanoseconds: point.timestamp))
            for field in point.fields {
                let fieldID = try index.fieldID(field.name)
                groups[key, default: []].append(FieldSample(field: fieldID, timestamp: point.timestamp, value: field.value))
            }
            outcome.stored += point.fields.count
        }
        guard !groups.isEmpty else { return outcome }
        let batch = WriteBatch()
        for (key, samples) in groups {
            batch.merge(key.bytes, MinuteRecord(samples: samples).encoded(), in: minutes)
        }
        try database.write(batch, sync: sync)
        return outcome
    }

    /// One interval of a rollup query.
    public struct RollupRow: Sendable, Equatable {
        /// Start of the interval, Unix seconds.
        public var start: Int64
        public var rollup: FieldRollup
    }

    /// Rollups of one field of one series between `start` and `end` (Unix seconds, end
    /// exclusive), per minute or per day (a day is the merge of its minutes).
    public func rollups(series: UInt64, field: UInt16, start: Int64, end: Int64, perDay: Bool) throws -> [RollupRow] {
        guard end > start else { return [] }
        // Days are whole: a per-day query starts at the beginning of the day holding `start`.
        let firstMinute = perDay ? UInt32(clamping: max(0, start) / 86_400 * 1440) : UInt32(clamping: max(0, start) / 60)
        let lastMinute = UInt32(clamping: (max(0, end) + 59) / 60)
        var rows: [RollupRow] = []
        try database.scan(minutes, lowerBound: RollupKey(series: series, interval: firstMinute).bytes,
                          upperBound: RollupKey(series: series, interval: lastMinute).bytes) { key, value in
            guard let rollupKey = RollupKey(bytes: key), let record = MinuteRecord(decoding: value),
                  let rollup = record.rollup(field: field) else { return true }
            let intervalStart = perDay ? Int64(rollupKey.interval / 1440) * 86_400 : Int64(rollupKey.interval) * 60
            if perDay, var last = rows.last, last.start == intervalStart {
                last.rollup.merge(rollup)
                rows[rows.count - 1] = last
            } else {
                rows.append(RollupRow(start: intervalStart, rollup: rollup))
            }
            return true
        }
        return rows
    }
}

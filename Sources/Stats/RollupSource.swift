import Foundation
import TimeSeries

/// Which parts of a ``FieldRollup`` a caller reads, so that a source that computes each with a
/// query of its own (a cluster TSDB) computes only those. The local store fills them all.
public struct RollupStatistics: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `count`.
    public static let count = RollupStatistics(rawValue: 1 << 0)
    /// `sum`.
    public static let sum = RollupStatistics(rawValue: 1 << 1)
    /// `last`.
    public static let last = RollupStatistics(rawValue: 1 << 2)
    /// `lastTime`.
    public static let lastTime = RollupStatistics(rawValue: 1 << 3)
    /// `onlineMinutes`.
    public static let onlineMinutes = RollupStatistics(rawValue: 1 << 4)
    /// `min`, `max`, `first`, `firstTime` and `onlineCount` (only the generic rollup API reads them).
    public static let other = RollupStatistics(rawValue: 1 << 5)

    public static let all: RollupStatistics = [.count, .sum, .last, .lastTime, .onlineMinutes, .other]
}

/// Where the stats read samples from: series by (organization, measurement), their minute and
/// day rollups and newest samples over a time range, and the traffic counters summed since start.
///
/// Two implementations: the local store (``TimeSeriesStore``, the embedded default) and a
/// cluster TSDB's Prometheus query API (cluster mode's `--stats-source`), which answers the same
/// questions for every replica's samples. ``FleetStats`` and the `/metrics` fleet families never
/// name the source they read; the calls are batched over many series, so that a remote source
/// answers one query for all of them.
public protocol RollupSource: Sendable {
    /// The organizations that have at least one series.
    func organizations() async throws -> [String]
    /// The series of `measurement` written for `organization`, from position `offset` on, and
    /// how many there are in total. Series are only ever appended, so a caller that remembers
    /// how many it has seen reads only the new ones.
    func series(organization: String, measurement: String, from offset: Int) async throws -> (total: Int, new: [(id: UInt64, key: SeriesKey)])
    /// The id of field `name`, or `nil` when no sample of it can exist.
    func fieldID(_ name: String) -> UInt16?
    /// Per series of `series`, per field of `fields`, the rollups per minute (or per UTC day)
    /// whose period starts in `[start, end)` (Unix seconds), in time order; periods without
    /// samples are absent. Only `statistics` of each rollup need to be right.
    func rollups(series: [UInt64], fields: [UInt16], start: Int64, end: Int64, perDay: Bool,
                 statistics: RollupStatistics) async throws -> [[[TimeSeriesStore.RollupRow]]]
    /// Per series of `series`, per field of `fields`: the count and sum of every retained
    /// sample (all-time totals: the days not older than the day retention at `now`, today
    /// included). The local store reads two day records a series whatever the history.
    func totals(series: [UInt64], fields: [UInt16], now: Date) async throws -> [[FieldTotal]]
    /// The newest sample at or before `now` of each (series, field), series-major:
    /// `result[seriesIndex * fields.count + fieldIndex]`, `nil` where there is none.
    func latest(series: [UInt64], fields: [UInt16], now: Date) async throws -> [LatestSample?]
    /// The counted fields (`TimeSeriesSettings.countedFields`) summed per series since start;
    /// empty for a source that keeps no such sums.
    func countedTotals() -> [UInt64: [UInt16: Double]]
    /// Series per batched question: the stats ask about this many series at a time (which
    /// bounds the rows held at once). A source that answers a question with one request
    /// prefers large batches.
    var batchSize: Int { get }
}

extension RollupSource {
    public var batchSize: Int { 256 }
}

extension TimeSeriesStore: RollupSource {
    /// See ``RollupSource/organizations()``.
    public func organizations() -> [String] { index.organizations }

    /// See ``RollupSource/series(organization:measurement:from:)``.
    public func series(organization: String, measurement: String, from offset: Int) -> (total: Int, new: [(id: UInt64, key: SeriesKey)]) {
        index.series(organization: organization, measurement: measurement, from: offset)
    }

    /// See ``RollupSource/fieldID(_:)``.
    public func fieldID(_ name: String) -> UInt16? {
        index.existingFieldID(name)
    }

    /// See ``RollupSource/rollups(series:fields:start:end:perDay:statistics:)``: one read of each
    /// series' blocks, every statistic filled.
    public func rollups(series: [UInt64], fields: [UInt16], start: Int64, end: Int64, perDay: Bool,
                        statistics: RollupStatistics) throws -> [[[RollupRow]]] {
        try series.map { try rollups(series: $0, fields: fields, start: start, end: end, perDay: perDay) }
    }

    /// See ``RollupSource/latest(series:fields:now:)``.
    public func latest(series: [UInt64], fields: [UInt16], now: Date) throws -> [LatestSample?] {
        try latestFlat(series: series, fields: fields, now: now)
    }
}

/// The stats route being answered, for the task that answers it: a remote source counts its
/// requests by it (`flashback_stats_source_requests_total{route}`). A route template, never a
/// client string; `other` outside the stats routes.
public enum StatsRoute {
    @TaskLocal public static var current = "other"
}

/// The stats source could not answer: the request fails with 503 (it may succeed later).
public enum StatsSourceError: Error, CustomStringConvertible, Sendable {
    /// No answer, or an error answer.
    case unavailable(String)
    /// An answer that is not the Prometheus API's shape.
    case malformed(String)
    /// A 4xx answer: the query itself was refused (a limit of the TSDB, a bad query), the same
    /// from any endpoint.
    case refused(status: Int, String)

    public var description: String {
        switch self {
        case .unavailable(let detail): return "the stats source is unavailable: \(detail)"
        case .malformed(let what): return "the stats source answered \(what) in an unexpected shape"
        case .refused(let status, let detail): return "the stats source refused a query with HTTP \(status): \(detail)"
        }
    }
}

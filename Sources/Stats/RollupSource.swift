import Foundation
import TimeSeries

/// Where the stats read samples from: series by (organization, measurement), their minute and
/// day rollups and newest samples over a time range, and the traffic counters summed since start.
///
/// The local store (``TimeSeriesStore``) is the source today; a cluster TSDB's query API can
/// answer the same questions, so ``FleetStats`` and the `/metrics` fleet families never name
/// the store they read.
public protocol RollupSource: Sendable {
    /// The organizations that have at least one series.
    var organizations: [String] { get }
    /// The series of `measurement` written for `organization`, from position `offset` on, and
    /// how many there are in total. Series are only ever appended, so a caller that remembers
    /// how many it has seen reads only the new ones.
    func series(organization: String, measurement: String, from offset: Int) -> (total: Int, new: [(id: UInt64, key: SeriesKey)])
    /// The id of field `name`, or `nil` when no sample of it was ever stored.
    func fieldID(_ name: String) -> UInt16?
    /// Per field of `fields`, the rollups of `series` per minute (or per UTC day) whose period
    /// starts in `[start, end)` (Unix seconds), in time order; periods without samples are absent.
    func rollups(series: UInt64, fields: [UInt16], start: Int64, end: Int64, perDay: Bool) throws -> [[TimeSeriesStore.RollupRow]]
    /// The newest sample at or before `now` of each (series, field), series-major:
    /// `result[seriesIndex * fields.count + fieldIndex]`, `nil` where there is none.
    func latest(series: [UInt64], fields: [UInt16], now: Date) throws -> [LatestSample?]
    /// The counted fields (`TimeSeriesSettings.countedFields`) summed per series since start.
    func countedTotals() -> [UInt64: [UInt16: Double]]
}

extension TimeSeriesStore: RollupSource {
    public var organizations: [String] { index.organizations }

    /// See ``RollupSource/series(organization:measurement:from:)``.
    public func series(organization: String, measurement: String, from offset: Int) -> (total: Int, new: [(id: UInt64, key: SeriesKey)]) {
        index.series(organization: organization, measurement: measurement, from: offset)
    }

    /// See ``RollupSource/fieldID(_:)``.
    public func fieldID(_ name: String) -> UInt16? {
        index.existingFieldID(name)
    }

    /// See ``RollupSource/latest(series:fields:now:)``.
    public func latest(series: [UInt64], fields: [UInt16], now: Date) throws -> [LatestSample?] {
        try latestFlat(series: series, fields: fields, now: now)
    }
}

import AsyncHTTPClient
import CollectorModel
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import RemoteWrite
import Stats
import Synchronization
import TimeSeries

/// The stats' ``RollupSource`` over a Prometheus query API (`--stats-source`): VictoriaMetrics
/// (vmselect), Grafana Mimir, Thanos Query, Prometheus. Cluster mode's replicas forward every
/// sample there with remote write, so any replica answers for the whole fleet.
///
/// Every statistic is one plain range function over the series the remote-write naming creates
/// (``PrometheusNames``, ``DerivedSeries``), evaluated by `query_range` at the **last
/// millisecond** of each minute or day with a window of one period: the window `(t − period, t]`
/// of the query engines then holds exactly the samples of `[start, start + period)`, the periods
/// of the local store (samples are in whole milliseconds). One query answers a statistic for
/// every series of a batch:
///
/// | statistic | query |
/// |---|---|
/// | count | `count_over_time(m{…}[p])` |
/// | sum | `sum_over_time(m{…}[p])` |
/// | last | `last_over_time(m{…}[p])` |
/// | last time | `max_over_time(m:timestamp_seconds{…}[p])` (node status) |
/// | ONLINE minutes | `count_over_time(m:online_minute{…}[p])` |
///
/// Series get ids here, in the order they are first seen (the ids the stats cache), from
/// `/api/v1/series` over the retention. The receiver must deduplicate identical samples
/// (docs/cluster.md), or a write forwarded by two replicas would count twice.
public final class PrometheusRollupSource: RollupSource {
    /// One query API: its base URL (the part before `/api/v1/…`, credentials removed) and the
    /// headers of every request to it (`Authorization`, a tenant header).
    public struct Endpoint: Sendable {
        public var url: String
        public var headers: [(name: String, value: String)]

        public init(url: String, headers: [(name: String, value: String)] = []) {
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.headers = headers
        }
    }

    /// Where and how to ask.
    public struct Settings: Sendable {
        /// The query API's base URL (the part before `/api/v1/…`), credentials removed.
        public var baseURL: String
        /// Headers of every request (`Authorization`, a tenant header).
        public var headers: [(name: String, value: String)] = []
        /// Query APIs that answer for the same data when the first cannot (an HA pair of
        /// vmselects, two Prometheus servers fed the same samples), in order: a connection error,
        /// a timeout or a 5xx moves the request, and the ones after it, to the next.
        public var fallbacks: [Endpoint] = []
        public var timeout: Duration = .seconds(30)
        /// How far back series and day rollups are looked for (the retention of day rows).
        public var retention: TimeInterval = TimeSeriesStore.defaultDayRetention
        /// How far back the newest sample of a series is looked for (the local store's
        /// `--max-sample-age` + 2 h).
        public var latestLookback: TimeInterval = 50 * 3600
        /// The longest PromQL text of one request: the parts of a combined query beyond it go in
        /// another request, and a batch's bucket matcher is left out when it would not fit
        /// (VictoriaMetrics refuses queries over `-search.maxQueryLen`, 16 KiB by default).
        public var maxQueryLength = 12_000
        /// Series asked about in one batched question (``RollupSource/batchSize``).
        public var batchSeries = 10_000
        /// How long after its end a day is sealed: no replica accepts a sample of it any more
        /// (`--max-sample-age`, the longest of any replica, plus an allowance for a delivery
        /// backlog). Sealed days are read from the replica's cache; a later delivery for one
        /// marks it (``LateDays``) and it is read again.
        public var sealAfter: TimeInterval = 49 * 3600
        /// How long an answer is used again (`--stats-answer-ttl`): open days' totals and day
        /// rows, minute rows and newest samples, whose query times are aligned to their period
        /// (or, for the newest samples, rounded up to this), so a dashboard polling every few
        /// seconds costs the TSDB one query per this long; answers are at most this old plus
        /// one background refresh. 0: every request asks.
        public var answerTTL: TimeInterval = 10
        /// How often a known (organization, measurement)'s series list is refreshed (in the
        /// background; a request never waits for a refresh, only for the first lookup).
        public var seriesRefresh: TimeInterval = 30

        public init(baseURL: String) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        }

        /// Every query API, the preferred first.
        var endpoints: [Endpoint] { [Endpoint(url: baseURL, headers: headers)] + fallbacks }
    }

    /// A series as the TSDB names it.
    struct RemoteSeries {
        var key: SeriesKey
        var organization: String
        var measurement: String
        /// Label matchers that select it with its metric name (everything but `__name__`).
        var labels: [String: String]
        /// The labels as one comparable string (``canonical(_:)``).
        var canonical: String
    }

    struct Table {
        var ids: [String: UInt64] = [:]
        var series: [UInt64: RemoteSeries] = [:]
        var byMeasurement: [String: [UInt64]] = [:]
        var nextID: UInt64 = 1
        var fieldIDs: [String: UInt16] = [:]
        var fieldNames: [UInt16: String] = [:]
    }

    let settings: Settings
    let client: HTTPClient
    let clock: @Sendable () -> Date
    let table = Mutex(Table())
    /// The endpoint that answered last: requests start there.
    let preferred = Atomic<Int>(0)
    /// When each (organization, measurement)'s series were last looked up (``SeriesLookup``).
    let lookups = Mutex<[String: LookupState]>([:])
    /// Where `flashback_stats_source_requests_total{route}` is counted (`nil`: not counted).
    let metrics: (any MetricsFactory)?
    private let requestCounters = Mutex<[String: Counter]>([:])
    public static let requestsMetric = "flashback_stats_source_requests_total"

    /// Where sealed days are kept (`nil`: every day is asked of the TSDB).
    let cache: SealedDayCache?
    /// One fill of a group's sealed days at a time.
    let fills = GroupGate()
    /// Late deliveries seen.
    let lateDays = LateDays()
    /// Day-aligned answers kept for ``Settings/answerTTL``.
    let answers: AnswerMemo
    /// The newest sealed day any group's cache holds (days since the epoch): what has been read
    /// into the cache, for operators and tests.
    public static let sealedThroughMetric = "flashback_stats_cache_sealed_through_day"
    /// Days forgotten because a late delivery marked them, counted per mark.
    public static let invalidationsMetric = "flashback_stats_cache_invalidations_total"
    let sealedThrough = Mutex<Int64>(-1)

    /// `metrics`: where every HTTP request to the query API is counted by the stats route it
    /// answers (``StatsRoute/current``). `cache`: where the rollups of sealed days are kept.
    public init(settings: Settings, client: HTTPClient, clock: @escaping @Sendable () -> Date = { Date() }, metrics: (any MetricsFactory)? = nil,
                cache: SealedDayCache? = nil) {
        self.settings = settings
        self.client = client
        self.clock = clock
        self.metrics = metrics
        self.cache = cache
        self.answers = AnswerMemo(ttl: .milliseconds(Int64(settings.answerTTL * 1000)))
    }

    /// Counts one HTTP request to the query API for the current stats route.
    func countRequest() {
        guard let metrics else { return }
        let route = StatsRoute.current
        let counter = requestCounters.withLock { counters in
            if let known = counters[route] { return known }
            let made = Counter(label: Self.requestsMetric, dimensions: [("route", route)], factory: metrics)
            counters[route] = made
            return made
        }
        counter.increment()
    }

    // MARK: RollupSource

    public func organizations() async throws -> [String] {
        let body = try await get("/api/v1/label/\(PrometheusNames.organizationLabel)/values", [:])
        guard let values = (body["data"] as? [Any])?.compactMap({ $0 as? String }) else { throw StatsSourceError.malformed("label values") }
        return values
    }

    public func fieldID(_ name: String) -> UInt16? {
        table.withLock { table in
            if let known = table.fieldIDs[name] { return known }
            guard table.fieldIDs.count < Int(UInt16.max) else { return nil }
            let id = UInt16(table.fieldIDs.count + 1)
            table.fieldIDs[name] = id
            table.fieldNames[id] = name
            return id
        }
    }

    /// See ``RollupSource/batchSize``: every statistic of a batch is one request, so the
    /// fewer batches the fewer requests.
    public var batchSize: Int { settings.batchSeries }

    public func rollups(series ids: [UInt64], fields: [UInt16], start: Int64, end: Int64, perDay: Bool,
                        statistics: RollupStatistics) async throws -> [[[TimeSeriesStore.RollupRow]]] {
        var out = [[[TimeSeriesStore.RollupRow]]](repeating: [[TimeSeriesStore.RollupRow]](repeating: [], count: fields.count), count: ids.count)
        guard !ids.isEmpty, end > start else { return out }
        let period: Int64 = perDay ? 86_400 : 60
        let now = clock()
        var first = UnixTime(clamping: start).seconds / period * period
        let last = (UnixTime(clamping: end).seconds + period - 1) / period * period - period
        // Nothing older than the retention exists; asking for it would cost points.
        first = max(first, (Int64(now.timeIntervalSince1970) - Int64(settings.retention)) / period * period)
        guard last >= first else { return out }
        let names = table.withLock { table in fields.map { table.fieldNames[$0] } }
        for batch in batches(ids) {
            var liveFirst = first
            // Sealed days from the cache when it keeps every asked statistic of every field.
            if perDay, statistics.isSubset(of: Self.cachedStatistics), let sealed = try await sealedDays(batch, now: now),
               let cached = sealed.fieldIDs(names), Int64(sealed.coverage.through) * 86_400 >= first {
                let from = UInt32(clamping: first / 86_400)
                let through = min(sealed.coverage.through, UInt32(clamping: last / 86_400))
                for series in batch.series {
                    guard let index = batch.positions[series.canonical], let id = cache?.existingSeriesID(group: sealed.group, canonical: series.canonical) else { continue }
                    let rows = try cache?.rows(series: id, fields: cached, from: from, through: through) ?? []
                    for (fieldIndex, fieldRows) in rows.enumerated() where names[fieldIndex] != nil { out[index][fieldIndex] = fieldRows }
                }
                liveFirst = (Int64(sealed.coverage.through) + 1) * 86_400
            }
            guard last >= liveFirst else { continue }
            // The rest: one combined query, every field and statistic.
            let parts = Self.parts(measurement: batch.sample.measurement, fields: names, statistics: statistics, window: "\(period)s")
            let matchers = batch.matchers(parts.count, settings.maxQueryLength)
            // Period-aligned times: the same question within a period is one key of the memo.
            let answers = try await rangeParts(parts.map { $0.expression(matchers) }, first: liveFirst, last: last, period: period, memo: true,
                                               resolve: resolver(batch.sample.measurement))
            // Rows per (series, field) cell; the parts of one cell answer periods in time order,
            // so a row is found by a cursor, not a dictionary.
            var cells: [Int: [TimeSeriesStore.RollupRow]] = [:]
            for series in answers {
                guard let part = series.part, let index = batch.position(of: series) else { continue }
                let (fieldIndex, stat) = (parts[part].field, parts[part].stat)
                let cell = index * fields.count + fieldIndex
                var rows = cells.removeValue(forKey: cell) ?? []
                var cursor = 0
                for (periodStart, value) in series.points {
                    let start = Int64(saturating: periodStart)
                    while cursor < rows.count, rows[cursor].start < start { cursor += 1 }
                    if cursor == rows.count || rows[cursor].start != start {
                        rows.insert(TimeSeriesStore.RollupRow(start: start, rollup: Self.emptyRollup), at: cursor)
                    }
                    stat.apply(value, to: &rows[cursor].rollup)
                }
                cells[cell] = rows
            }
            for (cell, rows) in cells {
                out[cell / fields.count][cell % fields.count] += rows
            }
        }
        return out
    }

    static let emptyRollup = FieldRollup(count: 0, sum: 0, min: 0, max: 0, first: 0, firstTime: 0, last: 0, lastTime: 0, onlineCount: 0, onlineMinutes: 0)

    /// One statistic of one field over a window, as a PromQL expression of the batch's matchers.
    struct Part {
        /// The field's position in the caller's `fields`.
        var field: Int
        var stat: Stat
        /// The metric (or derived series) and the range function.
        var metric: String
        var function: String
        var window: String

        func expression(_ matchers: String) -> String { "\(function)(\(metric)\(matchers)[\(window)])" }
    }

    /// The parts that compute `statistics` of each named field of `measurement` over `window`.
    static func parts(measurement: String, fields names: [String?], statistics: RollupStatistics, window: String) -> [Part] {
        var parts: [Part] = []
        for (fieldIndex, name) in names.enumerated() {
            guard let name else { continue }
            let metric = PrometheusNames.metricName(measurement: measurement, field: name)
            let derived = DerivedSeries.applies(measurement: measurement, field: name)
            func add(_ stat: Stat, _ function: String, _ series: String = metric) {
                parts.append(Part(field: fieldIndex, stat: stat, metric: series, function: function, window: window))
            }
            if statistics.contains(.count) { add(.count, "count_over_time") }
            if statistics.contains(.sum) { add(.sum, "sum_over_time") }
            if statistics.contains(.last) { add(.last, "last_over_time") }
            if statistics.contains(.lastTime), derived { add(.lastTime, "max_over_time", metric + DerivedSeries.timestampSuffix) }
            if statistics.contains(.onlineMinutes), derived { add(.onlineMinutes, "count_over_time", metric + DerivedSeries.onlineMinuteSuffix) }
        }
        return parts
    }

    /// See ``RollupSource/totals(series:fields:now:)``: the sealed days' totals from the cache
    /// (two records a series), the open days' counts and sums in one instant query a batch.
    public func totals(series ids: [UInt64], fields: [UInt16], now: Date) async throws -> [[FieldTotal]] {
        var out = [[FieldTotal]](repeating: [FieldTotal](repeating: FieldTotal(), count: fields.count), count: ids.count)
        guard !ids.isEmpty, !fields.isEmpty else { return out }
        let today = UnixTime(clamping: now).day
        let firstDay = max(0, Int64((now.timeIntervalSince1970 - settings.retention) / 86_400))
        guard today >= firstDay else { return out }
        let names = table.withLock { table in fields.map { table.fieldNames[$0] } }
        for batch in batches(ids) {
            var liveFrom = firstDay
            if let sealed = try await sealedDays(batch, now: now), let cached = sealed.fieldIDs(names), Int64(sealed.coverage.through) >= firstDay {
                let members = batch.series.compactMap { series in batch.positions[series.canonical].map { (series, $0) } }
                let cachedIDs = members.map { cache?.existingSeriesID(group: sealed.group, canonical: $0.0.canonical) }
                let totals = try cache?.totals(series: cachedIDs, fields: cached, from: UInt32(firstDay), through: sealed.coverage.through) ?? []
                for ((_, index), perField) in zip(members, totals) {
                    for (fieldIndex, total) in perField.enumerated() where names[fieldIndex] != nil { out[index][fieldIndex] = total }
                }
                liveFrom = Int64(sealed.coverage.through) + 1
            }
            guard today >= liveFrom else { continue }
            // The open days as one window ending at today's last millisecond.
            let parts = Self.parts(measurement: batch.sample.measurement, fields: names, statistics: [.count, .sum],
                                   window: "\((today + 1 - liveFrom) * 86_400)s")
            let matchers = batch.matchers(parts.count, settings.maxQueryLength)
            // Each (series, field, statistic) answers once: added where it belongs.
            for series in try await instantParts(parts.map { $0.expression(matchers) }, time: Self.seconds(Double((today + 1) * 86_400) - 0.001),
                                                 memo: true, resolve: resolver(batch.sample.measurement)) {
                guard let part = series.part, let index = batch.position(of: series), let value = series.points.first?.1 else { continue }
                var rollup = Self.emptyRollup
                parts[part].stat.apply(value, to: &rollup)
                out[index][parts[part].field].add(rollup)
            }
        }
        return out
    }

    public func latest(series ids: [UInt64], fields: [UInt16], now: Date) async throws -> [LatestSample?] {
        var out = [LatestSample?](repeating: nil, count: ids.count * fields.count)
        guard !ids.isEmpty, !fields.isEmpty else { return out }
        let names = table.withLock { table in fields.map { table.fieldNames[$0] } }
        // Evaluated at `now` rounded up to the memo's lifetime, so that the questions of that
        // long are one (no sample is newer than now: the answer is the newest as of the query).
        let ttl = settings.answerTTL
        let evaluated = ttl > 0 ? (now.timeIntervalSince1970 / ttl).rounded(.up) * ttl : now.timeIntervalSince1970
        let time = Self.seconds(evaluated)
        for batch in batches(ids) {
            let parts = Self.parts(measurement: batch.sample.measurement, fields: names, statistics: [.last, .lastTime],
                                   window: "\(Int64(settings.latestLookback))s")
            let matchers = batch.matchers(parts.count, settings.maxQueryLength)
            var newest: [Int: FieldRollup] = [:]
            var timed: Set<Int> = []
            for series in try await instantParts(parts.map { $0.expression(matchers) }, time: time, memo: true, resolve: resolver(batch.sample.measurement)) {
                guard let part = series.part, let index = batch.position(of: series), let value = series.points.first?.1 else { continue }
                let slot = index * fields.count + parts[part].field
                parts[part].stat.apply(value, to: &newest[slot, default: Self.emptyRollup])
                if parts[part].stat == .last { timed.insert(slot) }
            }
            // The sample's own time where the remote-write naming keeps it; otherwise the newest
            // time is not known here and 0 stands for it (the stats read only the status
            // field's time).
            for slot in timed {
                guard let rollup = newest[slot] else { continue }
                out[slot] = LatestSample(time: rollup.lastTime, value: rollup.last)
            }
        }
        return out
    }

    /// The series of a batch of one (organization, measurement).
    struct Batch {
        /// One of them (for the names).
        var sample: RemoteSeries
        /// Each one's position in the caller's `ids` by its canonical labels.
        var positions: [String: Int]
        /// Each one's position by its id (what kept answers are resolved to).
        var byID: [UInt64: Int]
        var series: [RemoteSeries]

        /// The position of an answer's series: by the id it was resolved to, else by labels.
        func position(of answer: QueryAnswer.Series) -> Int? {
            if let id = answer.id, let index = byID[id] { return index }
            return positions[answer.canonical]
        }

        /// The label matchers of `parts` parts of a query within `budget` characters.
        func matchers(_ parts: Int, _ budget: Int) -> String {
            PrometheusRollupSource.matchers(organization: sample.organization, series: series, budget: budget / max(1, parts) - 80)
        }
    }

    /// Resolves an answer's series of `measurement` to the table's ids, under one lock.
    func resolver(_ measurement: String) -> @Sendable ([QueryAnswer.Series]) -> [UInt64?] {
        { [self] series in
            table.withLock { table in series.map { table.ids[measurement + "\u{0}" + $0.canonical] } }
        }
    }

    /// The series of `ids` by (organization, measurement).
    func batches(_ ids: [UInt64]) -> [Batch] {
        let known = table.withLock { table in ids.map { table.series[$0] } }
        var groups: [String: [Int]] = [:]
        for (index, series) in known.enumerated() {
            guard let series else { continue }
            groups[series.organization + "\u{0}" + series.measurement, default: []].append(index)
        }
        return groups.values.compactMap { members in
            guard let sample = known[members[0]] else { return nil }
            let positions = Dictionary(members.compactMap { index in known[index].map { ($0.canonical, index) } },
                                       uniquingKeysWith: { first, _ in first })
            let byID = Dictionary(members.map { (ids[$0], $0) }, uniquingKeysWith: { first, _ in first })
            return Batch(sample: sample, positions: positions, byID: byID, series: members.compactMap { known[$0] })
        }
    }

    /// None: the traffic counters since start are the replica's own, not the fleet's.
    public func countedTotals() -> [UInt64: [UInt16: Double]] { [:] }
}

import Catalog
import CollectorModel
import Foundation
import Registry
import Synchronization
import TimeSeries

extension NodeStatusValue {
    /// The status a stored value stands for.
    public static func status(of value: Double) -> NodeLiveness {
        if value > 0 { return .online }
        return value < 0 ? .disconnected : .offline
    }
}

/// Limits of the stats queries (flags `--stats-max-minute-range`, `--stats-max-day-range`,
/// `--stats-max-rows`).
public struct StatsSettings: Sendable {
    /// Longest range of minute rows per request (default 7 days).
    public var maxMinuteRange: TimeInterval = 7 * 86_400
    /// Longest range of day rows per request (default 400 days).
    public var maxDayRange: TimeInterval = 400 * 86_400
    /// Most rows one answer may hold; a larger answer is refused with the cap in the message.
    public var maxRows = 1_000_000
    /// When a silent (node, bucket) pair turns OFFLINE and DISCONNECTED.
    public var liveness = LivenessPolicy()

    /// The defaults, as documented on each property.
    public init() {}
}

/// The tags of a `node_status` or `bucket_traffic` series that the stats read.
public struct StatsSeries: Sendable {
    public var id: UInt64
    /// The organization the series was written for (`""`: a public node's).
    public var organization: String
    public var bucket: String
    public var node: String?
    public var repo: String?
    public var host: String?
}

/// One (node, bucket) pair with status reports.
public struct StatusPair: Sendable {
    public var node: BridgeNode
    public var bucket: String
    public var series: UInt64
}

/// The newest state of a pair.
public struct PairStatus: Sendable {
    public var pair: StatusPair
    /// The reported status, turned OFFLINE / DISCONNECTED when the pair went silent.
    public var status: NodeLiveness
    /// Time of the newest status report (the node's last-seen time when none is kept).
    public var lastUpdated: Date
    /// The newest reported latency.
    public var latencyMs: Double?
    /// Whether any status report is kept.
    public var hasReport: Bool
}

/// The newest state of a status series.
struct PairState {
    /// The reported status, turned OFFLINE / DISCONNECTED when the series went silent;
    /// DISCONNECTED when no report is kept.
    var status: NodeLiveness
    /// Time of the newest status report (nanoseconds since the Unix epoch), if any is kept.
    var reportNanos: Int64?
    /// The newest reported latency.
    var latencyMs: Double?
}

/// One minute of a pair.
public struct PairMinute: Sendable {
    public var pair: StatusPair
    /// Start of the minute, Unix seconds.
    public var minute: Int64
    /// The last status reported in the minute.
    public var status: NodeLiveness
    /// Time of the last status report of the minute.
    public var lastUpdated: Date
    /// The last latency reported in the minute.
    public var latencyMs: Double?
}

/// One day of a pair.
public struct PairDay: Sendable {
    public var pair: StatusPair
    /// Start of the day (UTC), Unix seconds.
    public var day: Int64
    /// ONLINE minutes ÷ minutes of the day the node was registered (up to now for today), in
    /// percent, two decimals.
    public var onlinePercent: Double
    /// Average reported latency of the day.
    public var averageLatencyMs: Double?
}

/// Traffic of one (period, repository, bucket, host).
public struct TrafficRow: Sendable, Equatable {
    /// Start of the minute or day, Unix seconds.
    public var start: Int64
    public var repo: String
    public var bucket: String
    public var host: String
    public var uploadBytes: Double
    public var downloadBytes: Double
    public var sizeChange: Double
    /// Average latency over the records that carried one.
    public var latencyMs: Double?
}

/// All-time (retained) traffic of one bucket or repository.
public struct TrafficTotals: Sendable, Equatable {
    public var id: String
    /// Requests reported (`requests`), or the number of records where none was reported.
    public var count: Double = 0
    public var uploadBytes: Double = 0
    public var downloadBytes: Double = 0
    public var sizeChange: Double = 0
}

/// Rows produced one unit (a pair, a traffic group) at a time, so that an answer can be written
/// out while it is computed and memory stays bounded by one unit's rows.
public struct RowStream<Row>: Sendable {
    public let units: Int
    public let produce: @Sendable (Int) async throws -> [Row]

    /// A `RowStream` from its parts.
    public init(units: Int, produce: @escaping @Sendable (Int) async throws -> [Row]) {
        self.units = units
        self.produce = produce
    }

    /// The rows of `count` items read `chunk` at a time: each unit is one chunk, so a source
    /// answers one batched question per chunk and memory stays bounded by one chunk's rows.
    static func chunked(_ count: Int, by chunk: Int, _ rows: @escaping @Sendable (Range<Int>) async throws -> [Row]) -> RowStream {
        RowStream(units: (count + chunk - 1) / chunk) { unit in
            try await rows(unit * chunk..<min(count, (unit + 1) * chunk))
        }
    }

    /// Every row, in order.
    public func all() async throws -> [Row] {
        var out: [Row] = []
        for unit in 0..<units { out += try await produce(unit) }
        return out
    }
}

/// One (repository, bucket, host) of the traffic rows.
struct TrafficGroup: Hashable, Comparable, Sendable {
    var repo: String
    var bucket: String
    var host: String

    static func < (lhs: TrafficGroup, rhs: TrafficGroup) -> Bool { (lhs.repo, lhs.bucket, lhs.host) < (rhs.repo, rhs.bucket, rhs.host) }
}

/// A stats query refused: an id the caller may not see, a bad range, or a query over the limits.
/// The message names what to change and is safe to show to the caller.
public enum StatsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A bucket or repository the caller may not see, whether it exists or not.
    case notFound(String)
    /// A malformed query (a range that ends before it starts).
    case invalid(String)
    /// A query over the configured limits (`--stats-max-*`).
    case limit(String)

    public var message: String {
        switch self {
        case .notFound(let message), .invalid(let message), .limit(let message): return message
        }
    }

    public var description: String { message }
}

/// The stats API's queries over the rollups, scoped like the catalog: a caller sees its
/// organization's series whose bucket (and repository) it may see — catalog entries of its
/// organization and workspaces, or ids not in the catalog when its token is not limited to
/// workspaces — and public nodes' series only for buckets of its catalog. Asking for an id the
/// caller may not see is `.notFound`, whether it exists or not.
public final class FleetStats: Sendable {
    public static let statusMeasurement = FleetSchema.NodeStatus.measurement
    public static let trafficMeasurement = FleetSchema.BucketTraffic.measurement

    let store: any RollupSource
    let registry: NodeRegistry
    let catalog: StorageCatalog
    public let settings: StatsSettings
    /// The series of each (organization, measurement) with their tags, grown as new series
    /// appear (series keys never change, ids are only appended).
    private let known = Mutex<[String: KnownSeries]>([:])
    /// The export's pair order, kept between scrapes (see `metricFamilies(now:)`).
    let exportPairs = Mutex<ExportPairs?>(nil)
    /// The export's traffic buckets, kept between scrapes (see `metricFamilies(now:)`).
    let exportBuckets = Mutex<ExportBuckets?>(nil)

    struct KnownSeries {
        /// How many of the index's series have been read.
        var offset = 0
        var all: [StatsSeries] = []
        /// Positions in `all` by bucket.
        var byBucket: [String: [Int]] = [:]
    }

    /// Stats over `store`, scoped by `catalog`, with node facts from `registry`.
    public init(store: any RollupSource, registry: NodeRegistry, catalog: StorageCatalog, settings: StatsSettings = StatsSettings()) {
        self.store = store
        self.registry = registry
        self.catalog = catalog
        self.settings = settings
    }

    // MARK: Series and scope

    /// The series of `measurement` the scope may see, before any filter, optionally only
    /// those of `buckets`.
    func series(_ measurement: String, _ scope: CatalogScope, buckets: [String]? = nil) async throws -> (own: [StatsSeries], public: [StatsSeries]) {
        let own = try await tracked(organization: scope.organization, measurement: measurement, buckets: buckets)
        let shared = scope.organization.isEmpty ? [] : try await tracked(organization: "", measurement: measurement, buckets: buckets)
        return (own, shared)
    }

    /// Every bucket id the organization's own series of `measurement` carry.
    func ownBuckets(_ measurement: String, _ scope: CatalogScope) async throws -> Set<String> {
        try await refresh(organization: scope.organization, measurement: measurement) { Set($0.byBucket.keys) }
    }

    private func tracked(organization: String, measurement: String, buckets: [String]?) async throws -> [StatsSeries] {
        try await refresh(organization: organization, measurement: measurement) { known in
            guard let buckets else { return known.all }
            return buckets.flatMap { (known.byBucket[$0] ?? []).map { known.all[$0] } }
        }
    }

    private func refresh<T>(organization: String, measurement: String, _ body: (KnownSeries) -> T) async throws -> T {
        let name = organization + "\u{0}" + measurement
        let offset = known.withLock { $0[name]?.offset ?? 0 }
        let (total, new) = try await store.series(organization: organization, measurement: measurement, from: offset)
        // Parse outside the lock; another request may have added the same ones meanwhile.
        let parsed = new.map { id, key -> StatsSeries? in
            let tags = Dictionary(key.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            guard let bucket = tags[FleetSchema.Tag.bucket] else { return nil }
            return StatsSeries(id: id, organization: organization, bucket: bucket, node: tags[FleetSchema.Tag.node], repo: tags[FleetSchema.Tag.repo], host: tags[FleetSchema.Tag.host])
        }
        return known.withLock { table in
            var entry = table[name] ?? KnownSeries()
            if entry.offset == offset, total > offset {
                for series in parsed {
                    guard let series else { continue }
                    entry.byBucket[series.bucket, default: []].append(entry.all.count)
                    entry.all.append(series)
                }
                entry.offset = total
                table[name] = entry
            }
            return body(entry)
        }
    }

    /// Whether the scope sees a series' bucket and repository.
    private func sees(_ series: StatsSeries, _ scope: CatalogScope, _ bucketVisibility: inout [String: CatalogVisibility]) -> Bool {
        let bucket = bucketVisibility[series.bucket] ?? catalog.visibility(ofBucket: series.bucket, scope)
        bucketVisibility[series.bucket] = bucket
        func allowed(_ visibility: CatalogVisibility) -> Bool {
            switch visibility {
            case .visible: return true
            case .hidden: return false
            // Ids outside the catalog: only the organization's own series, for an unrestricted token.
            case .unknown: return series.organization == scope.organization && scope.workspaces.isEmpty
            }
        }
        guard allowed(bucket) else { return false }
        if let repo = series.repo { return allowed(catalog.visibility(ofRepository: repo, scope)) }
        return true
    }

    /// Checks that every requested id is one the scope may see: a catalog entry of its own, or
    /// an id its own series carry (token not limited to workspaces). `.notFound` otherwise.
    private func checkRequested(_ ids: [String], kind: String, known: Set<String>, visibility: (String) -> CatalogVisibility, _ scope: CatalogScope) throws {
        for id in ids {
            switch visibility(id) {
            case .visible: continue
            case .hidden: throw StatsError.notFound("\(kind) \(id) not found")
            case .unknown:
                guard scope.workspaces.isEmpty, known.contains(id) else { throw StatsError.notFound("\(kind) \(id) not found") }
            }
        }
    }

    /// The (node, bucket) pairs the scope sees, optionally only of `buckets` (each must be
    /// visible), ordered by node id then bucket.
    public func statusPairs(_ scope: CatalogScope, buckets requested: [String]? = nil) async throws -> [StatusPair] {
        if let requested {
            try checkRequested(requested, kind: "Bucket", known: try await ownBuckets(Self.statusMeasurement, scope),
                               visibility: { catalog.visibility(ofBucket: $0, scope) }, scope)
        }
        let (own, shared) = try await series(Self.statusMeasurement, scope, buckets: requested.map { Array(Set($0)) })
        var visibility: [String: CatalogVisibility] = [:]
        let visible = (own + shared).filter { series in series.node != nil && sees(series, scope, &visibility) }
        let nodes = registry.nodes(ids: visible.compactMap(\.node))
        return visible.compactMap { series -> StatusPair? in
            guard let id = series.node, let node = nodes[id], !node.isDeleted else { return nil }
            return StatusPair(node: node, bucket: series.bucket, series: series.id)
        }.sorted { ($0.node.id, $0.bucket, $0.series) < ($1.node.id, $1.bucket, $1.series) }
    }

    /// Whether the scope may see `bucket` (a catalog bucket of its own, or an id its own series
    /// carry); `.notFound` otherwise.
    public func checkBucket(_ bucket: String, _ scope: CatalogScope) async throws {
        let known = try await ownBuckets(Self.statusMeasurement, scope).union(try await ownBuckets(Self.trafficMeasurement, scope))
        try checkRequested([bucket], kind: "Bucket", known: known, visibility: { catalog.visibility(ofBucket: $0, scope) }, scope)
    }

    // MARK: Node status

    private func statusFields() -> (status: UInt16?, latency: UInt16?) {
        (store.fieldID(FleetSchema.NodeStatus.status), store.fieldID(FleetSchema.NodeStatus.latency))
    }

    /// The newest status of each pair at `now`: the last report's status, OFFLINE after
    /// `offlineAfter` of silence, DISCONNECTED after `disconnectedAfter`.
    public func latest(_ pairs: [StatusPair], now: Date) async throws -> [PairStatus] {
        let states = try await latestStates(series: pairs.map(\.series), now: now)
        return zip(pairs, states).map { pair, state in
            PairStatus(pair: pair, status: state.status, lastUpdated: state.reportNanos.map(Self.date(nanos:)) ?? pair.node.lastSeen,
                       latencyMs: state.latencyMs, hasReport: state.reportNanos != nil)
        }
    }

    /// The newest state of each status series: ``latest(_:now:)`` without the pairs.
    func latestStates(series: [UInt64], now: Date) async throws -> [PairState] {
        let (statusField, latencyField) = statusFields()
        guard let statusField else {
            return Array(repeating: PairState(status: .disconnected, reportNanos: nil, latencyMs: nil), count: series.count)
        }
        let fields = [statusField] + (latencyField.map { [$0] } ?? [])
        let width = fields.count
        let newest = try await store.latest(series: series, fields: fields, now: now)
        let nowSeconds = now.timeIntervalSince1970
        return series.indices.map { offset in
            let latency = width > 1 ? newest[offset * width + 1]?.value : nil
            guard let report = newest[offset * width] else {
                return PairState(status: .disconnected, reportNanos: nil, latencyMs: latency)
            }
            let silence = nowSeconds - Self.seconds(nanos: report.time)
            var status = NodeStatusValue.status(of: report.value)
            if silence >= settings.liveness.disconnectedAfter {
                status = .disconnected
            } else if silence >= settings.liveness.offlineAfter, status == .online {
                status = .offline
            }
            return PairState(status: status, reportNanos: report.time, latencyMs: latency)
        }
    }

    /// Every minute with a status report of each pair in `[start, end]`.
    public func minutes(_ pairs: [StatusPair], start: Date, end: Date) async throws -> [PairMinute] {
        try await minuteStream(pairs, start: start, end: end).all()
    }

    /// ``minutes(_:start:end:)`` pair by pair, for answers written as they are computed.
    /// Checks the range cap and that the answer cannot exceed `maxRows` before any row is read.
    public func minuteStream(_ pairs: [StatusPair], start: Date, end: Date) throws -> RowStream<PairMinute> {
        try checkRange(start: start, end: end, cap: settings.maxMinuteRange, unit: "minute")
        // Clamped to the range every layer computes in; the routes refuse dates outside it.
        let from = UnixTime(clamping: start).seconds
        let to = UnixTime(clamping: end).seconds + 1
        try checkRows(pairs.count, times: (to - from + 59) / 60)
        let (statusField, latencyField) = statusFields()
        guard let statusField else { return RowStream(units: 0) { _ in [] } }
        let fields = [statusField] + (latencyField.map { [$0] } ?? [])
        return RowStream.chunked(pairs.count, by: store.batchSize) { [store] range in
            let chunk = pairs[range]
            let perPair = try await store.rollups(series: chunk.map(\.series), fields: fields, start: from, end: to, perDay: false,
                                                  statistics: [.last, .lastTime])
            return zip(chunk, perPair).flatMap { pair, rows in
                var latency: [Int64: Double] = [:]
                if rows.count > 1 { for row in rows[1] { latency[row.start] = row.rollup.last } }
                return rows[0].map { row in
                    PairMinute(pair: pair, minute: row.start, status: NodeStatusValue.status(of: row.rollup.last),
                               lastUpdated: Self.date(nanos: row.rollup.lastTime), latencyMs: latency[row.start])
                }
            }
        }
    }

    /// Every day with a status report of each pair, for the days `firstDay...lastDay` (days
    /// since the epoch, UTC).
    public func days(_ pairs: [StatusPair], firstDay: Int64, lastDay: Int64, now: Date) async throws -> [PairDay] {
        try await dayStream(pairs, firstDay: firstDay, lastDay: lastDay, now: now).all()
    }

    /// ``days(_:firstDay:lastDay:now:)`` pair by pair.
    public func dayStream(_ pairs: [StatusPair], firstDay: Int64, lastDay: Int64, now: Date) throws -> RowStream<PairDay> {
        // Clamped to the range every layer computes in; the routes refuse dates outside it.
        let firstDay = min(max(firstDay, 0), UnixTime.latest.day)
        let lastDay = min(max(lastDay, 0), UnixTime.latest.day)
        try checkRange(start: Date(timeIntervalSince1970: TimeInterval(firstDay * 86_400)),
                       end: Date(timeIntervalSince1970: TimeInterval(lastDay * 86_400)), cap: settings.maxDayRange, unit: "day")
        try checkRows(pairs.count, times: lastDay - firstDay + 1)
        let (statusField, latencyField) = statusFields()
        guard let statusField else { return RowStream(units: 0) { _ in [] } }
        return RowStream.chunked(pairs.count, by: store.batchSize) { [store] range in
            let chunk = pairs[range]
            let ids = chunk.map(\.series)
            let (start, end) = (firstDay * 86_400, (lastDay + 1) * 86_400)
            // Status and latency in one question (for a remote source, one request).
            let perPair = try await store.rollups(series: ids, fields: [statusField] + (latencyField.map { [$0] } ?? []), start: start, end: end,
                                                  perDay: true, statistics: [.count, .sum, .onlineMinutes])
            return chunk.indices.flatMap { index in
                let pair = chunk[index]
                let rows = perPair[index - chunk.startIndex]
                var latency: [Int64: FieldRollup] = [:]
                for row in rows.count > 1 ? rows[1] : [] { latency[row.start] = row.rollup }
                return rows[0].map { row in
                    PairDay(pair: pair, day: row.start, onlinePercent: Self.onlinePercent(row.rollup, day: row.start, node: pair.node, now: now),
                            averageLatencyMs: latency[row.start].map { Self.mean($0.sum, $0.count) })
                }
            }
        }
    }

    /// ONLINE minutes ÷ minutes of the day the node was registered (up to `now` for today).
    static func onlinePercent(_ rollup: FieldRollup, day: Int64, node: BridgeNode, now: Date) -> Double {
        let from = max(TimeInterval(day), node.createdAt.timeIntervalSince1970)
        let to = min(TimeInterval(day + 86_400), now.timeIntervalSince1970)
        let registered = max(1, ((to - from) / 60).rounded(.up), Double(rollup.onlineMinutes))
        return (Double(rollup.onlineMinutes) / registered * 10_000).rounded() / 100
    }

    // MARK: Traffic

    /// The traffic series the scope sees, filtered by repositories, buckets and hosts (each
    /// requested repository and bucket must be visible).
    public func trafficSeries(_ scope: CatalogScope, repos: [String]? = nil, buckets: [String]? = nil, hosts: [String]? = nil) async throws -> [StatsSeries] {
        let (own, shared) = try await series(Self.trafficMeasurement, scope, buckets: buckets.map { Array(Set($0)) })
        if let buckets {
            let known = try await ownBuckets(Self.trafficMeasurement, scope).union(try await ownBuckets(Self.statusMeasurement, scope))
            try checkRequested(buckets, kind: "Bucket", known: known, visibility: { catalog.visibility(ofBucket: $0, scope) }, scope)
        }
        if let repos {
            try checkRequested(repos, kind: "Repository", known: Set(try await series(Self.trafficMeasurement, scope).own.compactMap(\.repo)),
                               visibility: { catalog.visibility(ofRepository: $0, scope) }, scope)
        }
        let (repoSet, bucketSet, hostSet) = (repos.map(Set.init), buckets.map(Set.init), hosts.map(Set.init))
        var visibility: [String: CatalogVisibility] = [:]
        return (own + shared).filter { series in
            (bucketSet?.contains(series.bucket) ?? true)
                && (repoSet.map { wanted in series.repo.map(wanted.contains) ?? false } ?? true)
                && (hostSet.map { wanted in series.host.map(wanted.contains) ?? false } ?? true)
                && sees(series, scope, &visibility)
        }
    }

    /// The order of ``TrafficRow``'s sums.
    private static let trafficFields = [FleetSchema.BucketTraffic.uploadedBytes, FleetSchema.BucketTraffic.downloadedBytes,
                                        FleetSchema.BucketTraffic.sizeChange, FleetSchema.BucketTraffic.latency,
                                        FleetSchema.BucketTraffic.requests]

    /// Traffic per (period, repository, bucket, host) in `[start, end]`, summed over the nodes
    /// that reported it, ordered by repository, bucket, host, then period.
    public func traffic(_ series: [StatsSeries], start: Date, end: Date, perDay: Bool) async throws -> [TrafficRow] {
        try await trafficStream(series, start: start, end: end, perDay: perDay).all()
    }

    /// ``traffic(_:start:end:perDay:)`` one (repository, bucket, host) at a time.
    public func trafficStream(_ series: [StatsSeries], start: Date, end: Date, perDay: Bool) throws -> RowStream<TrafficRow> {
        try checkRange(start: start, end: end, cap: perDay ? settings.maxDayRange : settings.maxMinuteRange, unit: perDay ? "day" : "minute")
        let ids = Self.trafficFields.map { store.fieldID($0) }
        let present = ids.indices.filter { ids[$0] != nil }
        let fields = present.compactMap { ids[$0] }
        let from = UnixTime(clamping: start).seconds
        let to = UnixTime(clamping: end).seconds + 1
        let period: Int64 = perDay ? 86_400 : 60
        let first = from / period * period
        // Members in node order, not series-id order: sums come out the same whichever source
        // numbered the series.
        let groups = Dictionary(grouping: series) { TrafficGroup(repo: $0.repo ?? "", bucket: $0.bucket, host: $0.host ?? "") }
            .map { ($0.key, $0.value.sorted { ($0.node ?? "", $0.organization) < ($1.node ?? "", $1.organization) }) }
            .sorted { $0.0 < $1.0 }
        try checkRows(groups.count, times: (to - first + period - 1) / period)
        guard !fields.isEmpty else { return RowStream(units: 0) { _ in [] } }
        // One slot a period of the range (at most 400 days or the minute range): a group's rows
        // are summed in place, without a dictionary, in a buffer reused across groups.
        let periods = Int(clamping: (to - first + period - 1) / period)
        // Groups a chunk at a time: one batched question for all their series.
        return RowStream.chunked(groups.count, by: store.batchSize) { [store] range in
            let chunk = groups[range]
            let ids = chunk.flatMap { $0.1.map(\.id) }
            let perSeries = try await store.rollups(series: ids, fields: fields, start: from, end: to, perDay: perDay, statistics: [.count, .sum])
            var offset = 0
            var out: [TrafficRow] = []
            var sums = PeriodSums(periods: periods)
            for (group, members) in chunk {
                for perField in perSeries[offset..<offset + members.count] {
                    for (slot, fieldIndex) in present.enumerated() {
                        for row in perField[slot] where row.start >= first && row.start < to {
                            sums.add(period: Int((row.start - first) / period), field: fieldIndex, row.rollup)
                        }
                    }
                }
                offset += members.count
                sums.drain { index, value in
                    out.append(TrafficRow(start: first + Int64(index) * period, repo: group.repo, bucket: group.bucket, host: group.host,
                                          uploadBytes: value.upload, downloadBytes: value.download, sizeChange: value.size,
                                          latencyMs: value.latencyCount == 0 ? nil : Self.mean(value.latencySum, value.latencyCount)))
                }
            }
            return out
        }
    }

    /// All-time totals per bucket, or per repository with `byRepository`, for every id in `ids`
    /// (zeros where nothing was reported): the days not older than the day retention at `now`.
    public func totals(_ series: [StatsSeries], ids: [String], byRepository: Bool, now: Date) async throws -> [TrafficTotals] {
        let fieldIDs = Self.trafficFields.map { store.fieldID($0) }
        var totals = Dictionary(ids.map { ($0, TrafficTotals(id: $0)) }, uniquingKeysWith: { first, _ in first })
        let present = fieldIDs.indices.filter { fieldIDs[$0] != nil }
        let counted = series.filter { one in (byRepository ? one.repo : one.bucket).map { totals[$0] != nil } ?? false }
        guard !present.isEmpty else { return ids.compactMap { totals[$0] } }
        for start in stride(from: 0, to: counted.count, by: store.batchSize) {
            let chunk = counted[start..<min(counted.count, start + store.batchSize)]
            let perSeries = try await store.totals(series: chunk.map(\.id), fields: present.compactMap { fieldIDs[$0] }, now: now)
            for (one, perField) in zip(chunk, perSeries) {
                guard let id = byRepository ? one.repo : one.bucket else { continue }
                var sums = [Double](repeating: 0, count: Self.trafficFields.count)
                var counts = [UInt64](repeating: 0, count: Self.trafficFields.count)
                for (slot, fieldIndex) in present.enumerated() {
                    sums[fieldIndex] += perField[slot].sum
                    counts[fieldIndex] &+= perField[slot].count
                }
                totals[id]?.uploadBytes += sums[0]
                totals[id]?.downloadBytes += sums[1]
                totals[id]?.sizeChange += sums[2]
                // Requests where reported; otherwise each record counts as one.
                totals[id]?.count += counts[4] > 0 ? sums[4] : Double(counts[0...2].max() ?? 0)
            }
        }
        return ids.compactMap { totals[$0] }
    }

    /// The buckets whose totals an unfiltered `/bucket/stats` lists: the catalog's buckets the
    /// scope sees, then any other bucket of `series`, in that order.
    public func visibleBuckets(_ scope: CatalogScope, series: [StatsSeries]) -> [String] {
        let catalogued = catalog.buckets(scope).map(\.id)
        let known = Set(catalogued)
        return catalogued + Array(Set(series.map(\.bucket)).subtracting(known)).sorted()
    }

    /// Like ``visibleBuckets(_:series:)`` for repositories.
    public func visibleRepositories(_ scope: CatalogScope, series: [StatsSeries]) -> [String] {
        let catalogued = catalog.repositories(scope).map(\.id)
        let known = Set(catalogued)
        return catalogued + Array(Set(series.compactMap(\.repo)).subtracting(known)).sorted()
    }

    /// The storage API a node serves a bucket with: the catalog bucket's type, else the prefix
    /// of the node's URL (`s3-…`, `gcs-…`, `blob-…`), else empty.
    public func storageType(bucket: String, node: BridgeNode, scope: CatalogScope) -> String {
        if let known = try? catalog.bucket(scope, id: bucket) { return known.storageType.rawValue }
        let host = Self.host(of: node.url)
        switch host.split(separator: "-").first.map(String.init)?.lowercased() {
        case "s3": return "S3"
        case "gcs": return "GCS"
        case "blob", "azure": return "BLOB"
        default: return ""
        }
    }

    static func host(of url: String) -> String {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") { rest = rest[scheme.upperBound...] }
        return String(rest.prefix { $0 != "/" && $0 != ":" })
    }

    /// The host pattern of a node (`*-us-east-1-aws.flashback.tech` for
    /// `https://s3-us-east-1-aws.flashback.tech`): the API prefix of the first label becomes `*`.
    public static func hostPattern(url: String) -> String {
        let host = host(of: url)
        guard let dash = host.firstIndex(of: "-"), let dot = host.firstIndex(of: "."), dash < dot else { return host }
        return "*" + host[dash...]
    }

    // MARK: Limits

    func checkRange(start: Date, end: Date, cap: TimeInterval, unit: String) throws {
        guard start <= end else { throw StatsError.invalid("startDate must not be after endDate") }
        guard end.timeIntervalSince(start) <= cap else {
            throw StatsError.limit("the range of \(unit) rows is capped at \(Self.describe(cap)) per request; narrow startDate/endDate")
        }
    }

    /// Refuses an answer of `units` × `times` rows (pairs or groups × periods) over `maxRows`.
    func checkRows(_ units: Int, times periods: Int64) throws {
        let (count, overflow) = Int64(units).multipliedReportingOverflow(by: max(0, periods))
        guard !overflow, count <= settings.maxRows else {
            throw StatsError.limit("the answer would hold more than \(settings.maxRows) rows; narrow the range or filter by bucket")
        }
    }

    static func describe(_ interval: TimeInterval) -> String {
        interval.truncatingRemainder(dividingBy: 86_400) == 0 ? "\(Int(saturating: interval / 86_400)) days" : "\(Int(saturating: interval)) seconds"
    }

    /// `sum / count` to the millionth: averages of reported latencies, the same whichever store
    /// summed them (a cluster TSDB adds samples in another order than the local store's minute
    /// rollups, which can differ in the last bit of a non-integer sum).
    static func mean(_ sum: Double, _ count: UInt64) -> Double {
        guard count > 0 else { return 0 }
        return (sum / Double(count) * 1_000_000).rounded() / 1_000_000
    }

    static func date(nanos: Int64) -> Date {
        Date(timeIntervalSince1970: seconds(nanos: nanos))
    }

    /// Unix seconds of a sample time, to the millisecond (what every answer shows).
    static func seconds(nanos: Int64) -> TimeInterval {
        TimeInterval(nanos / 1_000_000) / 1000
    }
}

/// A traffic group's sums per period of a range: a dense buffer when the range has few enough
/// periods (always, within the default limits), a dictionary otherwise; periods come out in time
/// order and the buffer is cleared for the next group.
struct PeriodSums {
    struct Sums {
        var upload = 0.0
        var download = 0.0
        var size = 0.0
        var latencySum = 0.0
        var latencyCount: UInt64 = 0
        var used = false
    }

    /// Most periods kept in a dense buffer (a week of minutes is 10,080).
    static let denseLimit = 1 << 16
    private var dense: [Sums]
    private var sparse: [Int: Sums] = [:]
    private var touched: [Int] = []

    init(periods: Int) {
        dense = periods <= Self.denseLimit ? [Sums](repeating: Sums(), count: max(0, periods)) : []
    }

    /// Adds `rollup` of the traffic field `field` (the order of ``FleetStats``' traffic fields)
    /// to period `index`.
    mutating func add(period index: Int, field: Int, _ rollup: FieldRollup) {
        if index < dense.count {
            if !dense[index].used {
                dense[index].used = true
                touched.append(index)
            }
            Self.add(field, rollup, to: &dense[index])
        } else {
            Self.add(field, rollup, to: &sparse[index, default: Sums()])
        }
    }

    private static func add(_ field: Int, _ rollup: FieldRollup, to sums: inout Sums) {
        switch field {
        case 0: sums.upload += rollup.sum
        case 1: sums.download += rollup.sum
        case 2: sums.size += rollup.sum
        case 3:
            sums.latencySum += rollup.sum
            sums.latencyCount += rollup.count
        default: break
        }
    }

    /// Calls `body` with each period that has sums, in order, and clears them.
    mutating func drain(_ body: (Int, Sums) -> Void) {
        if !touched.isEmpty {
            touched.sort()
            for index in touched {
                body(index, dense[index])
                dense[index] = Sums()
            }
            touched.removeAll(keepingCapacity: true)
        }
        if !sparse.isEmpty {
            for (index, sums) in sparse.sorted(by: { $0.key < $1.key }) { body(index, sums) }
            sparse.removeAll(keepingCapacity: true)
        }
    }
}

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
    }

    private struct Table {
        var ids: [String: UInt64] = [:]
        var series: [UInt64: RemoteSeries] = [:]
        var byMeasurement: [String: [UInt64]] = [:]
        var nextID: UInt64 = 1
        var fieldIDs: [String: UInt16] = [:]
        var fieldNames: [UInt16: String] = [:]
    }

    private let settings: Settings
    private let client: HTTPClient
    private let clock: @Sendable () -> Date
    private let table = Mutex(Table())
    /// The endpoint that answered last: requests start there.
    private let preferred = Atomic<Int>(0)
    /// Where `flashback_stats_source_requests_total{route}` is counted (`nil`: not counted).
    private let metrics: (any MetricsFactory)?
    private let requestCounters = Mutex<[String: Counter]>([:])
    public static let requestsMetric = "flashback_stats_source_requests_total"

    /// `metrics`: where every HTTP request to the query API is counted by the stats route it
    /// answers (``StatsRoute/current``).
    public init(settings: Settings, client: HTTPClient, clock: @escaping @Sendable () -> Date = { Date() }, metrics: (any MetricsFactory)? = nil) {
        self.settings = settings
        self.client = client
        self.clock = clock
        self.metrics = metrics
    }

    /// Counts one HTTP request to the query API for the current stats route.
    private func countRequest() {
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

    public func series(organization: String, measurement: String, from offset: Int) async throws -> (total: Int, new: [(id: UInt64, key: SeriesKey)]) {
        let now = clock().timeIntervalSince1970
        let names = Self.metricNames(measurement: measurement)
        let selector = "{__name__=~\"\(names)\",\(PrometheusNames.organizationLabel)=\"\(Self.escape(organization))\"}"
        let body = try await get("/api/v1/series", ["match[]": selector, "start": Self.seconds(now - settings.retention), "end": Self.seconds(now + 3600)])
        guard let found = body["data"] as? [[String: String]] else { throw StatsSourceError.malformed("series") }
        // One stored series carries several metrics (one per field): its labels without the name.
        var labelSets: [String: [String: String]] = [:]
        for var labels in found {
            labels.removeValue(forKey: "__name__")
            // A public node's series has no organization label; others must match exactly.
            guard (labels[PrometheusNames.organizationLabel] ?? "") == organization else { continue }
            labelSets[Self.canonical(labels)] = labels
        }
        return table.withLock { table in
            let listKey = organization + "\u{0}" + measurement
            for (canonical, labels) in labelSets.sorted(by: { $0.key < $1.key }) {
                let idKey = measurement + "\u{0}" + canonical
                guard table.ids[idKey] == nil else { continue }
                var tags = labels
                tags.removeValue(forKey: PrometheusNames.organizationLabel)
                let key = SeriesKey(organization: organization, measurement: measurement,
                                    tags: tags.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
                let id = table.nextID
                table.nextID += 1
                table.ids[idKey] = id
                table.series[id] = RemoteSeries(key: key, organization: organization, measurement: measurement, labels: labels)
                table.byMeasurement[listKey, default: []].append(id)
            }
            let ids = table.byMeasurement[listKey] ?? []
            guard offset < ids.count else { return (ids.count, []) }
            return (ids.count, ids[max(0, offset)...].compactMap { id in table.series[id].map { (id, $0.key) } })
        }
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

    public func rollups(series ids: [UInt64], fields: [UInt16], start: Int64, end: Int64, perDay: Bool,
                        statistics: RollupStatistics) async throws -> [[[TimeSeriesStore.RollupRow]]] {
        var out = [[[TimeSeriesStore.RollupRow]]](repeating: [[TimeSeriesStore.RollupRow]](repeating: [], count: fields.count), count: ids.count)
        guard !ids.isEmpty, end > start else { return out }
        let period: Int64 = perDay ? 86_400 : 60
        let now = Int64(clock().timeIntervalSince1970)
        var first = UnixTime(clamping: start).seconds / period * period
        let last = (UnixTime(clamping: end).seconds + period - 1) / period * period - period
        // Nothing older than the retention exists; asking for it would cost points.
        first = max(first, (now - Int64(settings.retention)) / period * period)
        guard last >= first else { return out }
        let range = (first: first, last: last)
        let names = table.withLock { table in fields.map { table.fieldNames[$0] } }
        // One query per (organization and measurement) batch, field and statistic.
        for (sample, byLabels, matchers) in batches(ids) {
            for (fieldIndex, name) in names.enumerated() {
                guard let name else { continue }
                let metric = PrometheusNames.metricName(measurement: sample.measurement, field: name)
                var queries: [(Stat, String)] = []
                if statistics.contains(.count) { queries.append((.count, "count_over_time(\(metric)\(matchers)[\(period)s])")) }
                if statistics.contains(.sum) { queries.append((.sum, "sum_over_time(\(metric)\(matchers)[\(period)s])")) }
                if statistics.contains(.last) { queries.append((.last, "last_over_time(\(metric)\(matchers)[\(period)s])")) }
                if statistics.contains(.lastTime), DerivedSeries.applies(measurement: sample.measurement, field: name) {
                    queries.append((.lastTime, "max_over_time(\(metric)\(DerivedSeries.timestampSuffix)\(matchers)[\(period)s])"))
                }
                if statistics.contains(.onlineMinutes), DerivedSeries.applies(measurement: sample.measurement, field: name) {
                    queries.append((.onlineMinutes, "count_over_time(\(metric)\(DerivedSeries.onlineMinuteSuffix)\(matchers)[\(period)s])"))
                }
                var rollups: [Int: [Int64: FieldRollup]] = [:]
                try await withThrowingTaskGroup(of: (Stat, [(labels: [String: String], points: [(Int64, Double)])]).self) { group in
                    for (stat, query) in queries {
                        group.addTask {
                            (stat, try await self.queryRange(query, first: range.first, last: range.last, period: period))
                        }
                    }
                    for try await (stat, result) in group {
                        for (labels, points) in result {
                            guard let index = byLabels[Self.canonical(labels)] else { continue }
                            for (periodStart, value) in points {
                                var rollup = rollups[index, default: [:]][periodStart]
                                    ?? FieldRollup(count: 0, sum: 0, min: 0, max: 0, first: 0, firstTime: 0, last: 0, lastTime: 0, onlineCount: 0, onlineMinutes: 0)
                                stat.apply(value, to: &rollup)
                                rollups[index, default: [:]][periodStart] = rollup
                            }
                        }
                    }
                }
                for (index, periods) in rollups {
                    out[index][fieldIndex] = periods.sorted { $0.key < $1.key }.map { TimeSeriesStore.RollupRow(start: $0.key, rollup: $0.value) }
                }
            }
        }
        return out
    }

    /// See ``RollupSource/totals(series:fields:now:)``: the day rollups of the retention, summed.
    public func totals(series ids: [UInt64], fields: [UInt16], now: Date) async throws -> [[FieldTotal]] {
        let end = UnixTime(clamping: now).adding(seconds: 86_400).seconds
        let perSeries = try await rollups(series: ids, fields: fields, start: 0, end: end, perDay: true, statistics: [.count, .sum])
        return perSeries.map { perField in
            perField.map { rows in
                rows.reduce(into: FieldTotal()) { $0.add($1.rollup) }
            }
        }
    }

    public func latest(series ids: [UInt64], fields: [UInt16], now: Date) async throws -> [LatestSample?] {
        var out = [LatestSample?](repeating: nil, count: ids.count * fields.count)
        guard !ids.isEmpty, !fields.isEmpty else { return out }
        let names = table.withLock { table in fields.map { table.fieldNames[$0] } }
        let window = Int64(settings.latestLookback)
        let time = Self.seconds(now.timeIntervalSince1970)
        for (sample, byLabels, matchers) in batches(ids) {
            for (fieldIndex, name) in names.enumerated() {
                guard let name else { continue }
                let metric = PrometheusNames.metricName(measurement: sample.measurement, field: name)
                let values = try await query("last_over_time(\(metric)\(matchers)[\(window)s])", time: time)
                // The sample's own time where the remote-write naming keeps it; otherwise the
                // newest time is not known here and 0 stands for it (the stats read only the
                // status field's time).
                var times: [[String: String]: Double] = [:]
                if DerivedSeries.applies(measurement: sample.measurement, field: name) {
                    for (labels, value) in try await query("max_over_time(\(metric)\(DerivedSeries.timestampSuffix)\(matchers)[\(window)s])", time: time) {
                        times[labels] = value
                    }
                }
                for (labels, value) in values {
                    guard let index = byLabels[Self.canonical(labels)] else { continue }
                    let nanos = times[labels].map { Self.nanoseconds(ofSeconds: $0) } ?? 0
                    out[index * fields.count + fieldIndex] = LatestSample(time: nanos, value: value)
                }
            }
        }
        return out
    }

    /// The series of `ids` by (organization, measurement): one of them (for the names), each
    /// one's position in `ids` by its canonical labels, and the label matchers that select them.
    private func batches(_ ids: [UInt64]) -> [(sample: RemoteSeries, positions: [String: Int], matchers: String)] {
        let known = table.withLock { table in ids.map { table.series[$0] } }
        var groups: [String: [Int]] = [:]
        for (index, series) in known.enumerated() {
            guard let series else { continue }
            groups[series.organization + "\u{0}" + series.measurement, default: []].append(index)
        }
        return groups.values.compactMap { members in
            guard let sample = known[members[0]] else { return nil }
            let positions = Dictionary(members.compactMap { index in known[index].map { (Self.canonical($0.labels), index) } },
                                       uniquingKeysWith: { first, _ in first })
            return (sample, positions, Self.matchers(organization: sample.organization, series: members.compactMap { known[$0] }))
        }
    }

    /// None: the traffic counters since start are the replica's own, not the fleet's.
    public func countedTotals() -> [UInt64: [UInt16: Double]] { [:] }

    // MARK: Queries

    enum Stat: Sendable {
        case count, sum, last, lastTime, onlineMinutes

        func apply(_ value: Double, to rollup: inout FieldRollup) {
            switch self {
            case .count: rollup.count = UInt64(clamping: Int64(saturating: value.rounded()))
            case .sum: rollup.sum = value
            case .last: rollup.last = value
            case .lastTime: rollup.lastTime = PrometheusRollupSource.nanoseconds(ofSeconds: value)
            case .onlineMinutes: rollup.onlineMinutes = UInt64(clamping: Int64(saturating: value.rounded()))
            }
        }
    }

    /// `query` evaluated at the last millisecond of each period from `first` to `last` (period
    /// starts, Unix seconds): each result series' labels (without `__name__`) and (period start,
    /// value) points.
    func queryRange(_ query: String, first: Int64, last: Int64, period: Int64) async throws -> [(labels: [String: String], points: [(Int64, Double)])] {
        let body = try await post("/api/v1/query_range", [
            "query": query,
            "start": Self.seconds(Double(first + period) - 0.001),
            "end": Self.seconds(Double(last + period) - 0.001),
            "step": "\(period)s",
            // VictoriaMetrics aligns start and end to the step for its cache unless told not to.
            "nocache": "1",
        ])
        guard let data = body["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else {
            throw StatsSourceError.malformed("query_range")
        }
        return try result.map { series in
            var labels = series["metric"] as? [String: String] ?? [:]
            labels.removeValue(forKey: "__name__")
            guard let values = series["values"] as? [[Any]] else { throw StatsSourceError.malformed("query_range values") }
            let points = try values.map { pair -> (Int64, Double) in
                guard pair.count == 2, let time = (pair[0] as? NSNumber)?.doubleValue, let text = pair[1] as? String, let value = Double(text) else {
                    throw StatsSourceError.malformed("query_range point")
                }
                // The evaluation time is the period's last millisecond.
                return (Int64(saturating: (time + 0.001).rounded()).subtractingSaturated(period), value)
            }
            return (labels, points)
        }
    }

    /// `query` at `time`: each result series' labels (without `__name__`) and value.
    func query(_ query: String, time: String) async throws -> [([String: String], Double)] {
        let body = try await post("/api/v1/query", ["query": query, "time": time, "nocache": "1"])
        guard let data = body["data"] as? [String: Any], let result = data["result"] as? [[String: Any]] else {
            throw StatsSourceError.malformed("query")
        }
        return try result.map { series in
            var labels = series["metric"] as? [String: String] ?? [:]
            labels.removeValue(forKey: "__name__")
            guard let pair = series["value"] as? [Any], pair.count == 2, let text = pair[1] as? String, let value = Double(text) else {
                throw StatsSourceError.malformed("query value")
            }
            return (labels, value)
        }
    }

    private func get(_ path: String, _ parameters: [String: String]) async throws -> [String: Any] {
        let query = parameters.isEmpty ? "" : "?" + Self.form(parameters)
        return try await execute(path) { endpoint in
            var request = HTTPClientRequest(url: endpoint.url + path + query)
            for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
            return request
        }
    }

    private func post(_ path: String, _ parameters: [String: String]) async throws -> [String: Any] {
        let body = Self.form(parameters)
        return try await execute(path) { endpoint in
            var request = HTTPClientRequest(url: endpoint.url + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
            request.body = .bytes(ByteBuffer(string: body))
            return request
        }
    }

    /// Asks the preferred endpoint, and on a connection error, a timeout or a 5xx (429 too) the
    /// next, within one request's timeout: each try may take half of what is left, the last all
    /// of it. The endpoint that answers becomes the preferred one.
    private func execute(_ path: String, _ make: (Endpoint) -> HTTPClientRequest) async throws -> [String: Any] {
        let endpoints = settings.endpoints
        let first = min(max(0, preferred.load(ordering: .relaxed)), endpoints.count - 1)
        let deadline = NIODeadline.now() + TimeAmount(settings.timeout)
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let index = (first + step) % endpoints.count
            let left = deadline - .now()
            let timeout = step == endpoints.count - 1 ? left : .nanoseconds(left.nanoseconds / 2)
            switch try await attempt(make(endpoints[index]), path, timeout: timeout) {
            case .answer(let object):
                if index != first { preferred.store(index, ordering: .relaxed) }
                return object
            case .failed(let reason):
                failures.append(endpoints.count > 1 ? "\(endpoints[index].url): \(reason)" : reason)
            }
        }
        throw StatsSourceError.unavailable("\(path): " + failures.joined(separator: "; "))
    }

    private enum Attempt {
        case answer([String: Any])
        /// Worth asking another endpoint.
        case failed(String)
    }

    private func attempt(_ request: HTTPClientRequest, _ path: String, timeout: TimeAmount) async throws -> Attempt {
        let response: HTTPClientResponse
        let body: ByteBuffer
        countRequest()
        do {
            response = try await client.execute(request, timeout: max(timeout, .milliseconds(1)))
            body = try await response.body.collect(upTo: 256 << 20)
        } catch {
            return .failed("\(error)")
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard response.status == .ok, let object, object["status"] as? String == "success" else {
            let reason = (object?["error"] as? String) ?? String(buffer: body).prefix(200).description
            let failure = "answered HTTP \(response.status.code): \(reason.prefix(300))"
            if response.status.code >= 500 || response.status == .tooManyRequests { return .failed(failure) }
            throw StatsSourceError.unavailable("\(path) \(failure)")
        }
        return .answer(object)
    }

    // MARK: Names

    /// The metric names of a measurement's fields: the fleet's known fields, else any name with
    /// the measurement's prefix (derived series, which have a colon, excluded).
    static func metricNames(measurement: String) -> String {
        let fields: [String]
        switch measurement {
        case FleetSchema.NodeStatus.measurement: fields = [FleetSchema.NodeStatus.status, FleetSchema.NodeStatus.latency]
        case FleetSchema.BucketTraffic.measurement: fields = FleetSchema.BucketTraffic.fields
        default: return regexEscape(PrometheusNames.metricName(measurement: measurement, field: "")) + "[a-zA-Z0-9_]+"
        }
        return fields.map { regexEscape(PrometheusNames.metricName(measurement: measurement, field: $0)) }.joined(separator: "|")
    }

    /// `{organization="…"}` plus, for a batch of few buckets, `bucket=~"b1|b2"` (the query then
    /// returns only the batch's series).
    static func matchers(organization: String, series: [RemoteSeries]) -> String {
        var matchers = ["\(PrometheusNames.organizationLabel)=\"\(escape(organization))\""]
        let buckets = Set(series.compactMap { $0.labels[FleetSchema.Tag.bucket] })
        if !buckets.isEmpty, buckets.count <= 64, series.allSatisfy({ $0.labels[FleetSchema.Tag.bucket] != nil }) {
            matchers.append("\(FleetSchema.Tag.bucket)=~\"\(escape(buckets.sorted().map(regexEscape).joined(separator: "|")))\"")
        }
        return "{" + matchers.joined(separator: ",") + "}"
    }

    /// A label set as one comparable string (sorted `name=value` pairs).
    static func canonical(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { $0.key + "\u{1}" + $0.value }.joined(separator: "\u{2}")
    }

    /// A string inside a PromQL double-quoted literal.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// A literal inside a (RE2) regular expression.
    static func regexEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\.+*?()|[]{}^$".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Nanoseconds of a time the TSDB gave in seconds (to the millisecond), saturating: an answer
    /// with an absurd or non-finite number must not trap.
    static func nanoseconds(ofSeconds value: Double) -> Int64 {
        let millis = Int64(saturating: (value * 1000).rounded())
        let (nanos, overflow) = millis.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? (millis > 0 ? .max : .min) : nanos
    }

    static func seconds(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    static func form(_ parameters: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return parameters.sorted { $0.key < $1.key }.map { key, value in
            (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key) + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }.joined(separator: "&")
    }
}

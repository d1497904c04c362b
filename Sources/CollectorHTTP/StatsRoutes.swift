import CollectorModel
import FlashbackWire
import Foundation
import Hummingbird
import Registry
import Stats

/// The stats API (flashback-api.md §4.2, §4.5, §4.6, §7.2, §8, Appendix B), answered from the
/// rollups and scoped to the caller's organization and workspaces (``FleetStats``).
///
/// Query forms the official client sends: lists joined with `,` (percent-encoded or not),
/// `unitId` and `bucketId` as synonyms, `''`/`undefined`/`null` as absent, ISO dates or
/// date-times for `/stats/daily|minute`, `ddmmyyyy` integers for `/stats/nodes/daily`.
struct StatsRoutes {
    let stats: FleetStats
    let now: @Sendable () -> Date

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/stats/nodes/minute") { request, context -> Response in
            try await StatsRoute.$current.withValue("/stats/nodes/minute") { try await nodesMinute(request, context: context) }
        }
        router.get("/stats/nodes/daily") { request, context -> Response in
            try await StatsRoute.$current.withValue("/stats/nodes/daily") { try await nodesDaily(request, context: context) }
        }
        router.get("/stats/daily") { request, context -> Response in
            try await StatsRoute.$current.withValue("/stats/daily") { try await traffic(request, context: context, perDay: true) }
        }
        router.get("/stats/minute") { request, context -> Response in
            try await StatsRoute.$current.withValue("/stats/minute") { try await traffic(request, context: context, perDay: false) }
        }
        router.get("/repo/stats") { request, context -> Response in
            try await StatsRoute.$current.withValue("/repo/stats") { try await repoTotals(request, context: context) }
        }
        for prefix in ["/bucket", "/unit"] {
            router.get(RouterPath("\(prefix)/stats")) { request, context -> Response in
                try await StatsRoute.$current.withValue("\(prefix)/stats") { try await bucketTotals(request, context: context, legacy: prefix == "/unit") }
            }
            router.get(RouterPath("\(prefix)/{bucketId}/status")) { _, context -> JSONResponse<BucketStatusResponse> in
                try await StatsRoute.$current.withValue("\(prefix)/{bucketId}/status") { try await bucketStatus(context: context, legacy: prefix == "/unit") }
            }
            router.post(RouterPath("\(prefix)/{bucketId}/stats")) { request, context -> JSONResponse<BucketNodeStatsResponse> in
                try await StatsRoute.$current.withValue("\(prefix)/{bucketId}/stats") { try await bucketNodeStats(request, context: context) }
            }
        }
    }

    // MARK: Query helpers

    /// A comma-joined list from the first present parameter of `names`; `nil` when absent.
    static func list(_ request: Request, _ names: String...) -> [String]? {
        for name in names {
            guard let text = request.uri.queryParameters.get(name).nonEmpty else { continue }
            let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0 != "undefined" && $0 != "null" }
            if !items.isEmpty { return items }
        }
        return nil
    }

    /// An ISO date or date-time parameter within ``UnixTime``'s range; a date alone as `end`
    /// covers its whole day. 400 naming the parameter otherwise.
    static func isoDate(_ request: Request, _ name: String, end: Bool) throws -> Date? {
        guard let text = request.uri.queryParameters.get(name).nonEmpty else { return nil }
        guard let parsed = StatsDates.parseISO(text) else {
            throw APIError(.badRequest, "\(name) must be an ISO-8601 date (2024-02-01) or date-time (2024-02-01T00:00:00.000Z) \(UnixTime.rangeDescription)")
        }
        return (end && parsed.dateOnly ? parsed.time.endOfDay : parsed.time).date
    }

    // MARK: /stats/nodes/minute

    /// `{success, data: [...]}` around rows written by `row`.
    static func rows<Row>(_ rows: [Row], capacity: Int, _ row: (inout JSONWriter, Row) -> Void) -> Response {
        var json = JSONWriter(capacity: 64 + rows.count * capacity)
        json.beginObject()
        json.key("data")
        json.beginArray()
        for item in rows {
            json.beginObject()
            row(&json, item)
            json.endObject()
        }
        json.endArray()
        json.key("success")
        json.bool(true)
        json.endObject()
        return json.response()
    }

    /// `{data: [...], success: true}` written as the rows of `stream` are computed, in chunks of
    /// about 256 KiB: memory stays bounded by two units' rows, whatever the answer's size. The
    /// next unit is read while this one is written (reading and JSON each take about half the
    /// time, on two cores), and no further than that: a slow reader holds the producer back.
    static func streamRows<Row: Sendable>(_ stream: RowStream<Row>, _ row: @escaping @Sendable (inout JSONWriter, Row) -> Void) -> Response {
        // The body is written after the handler returned: it counts for the same route.
        let route = StatsRoute.current
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody { writer in
            try await StatsRoute.$current.withValue(route) { try await writeRows(stream, row, to: &writer) }
        })
    }

    private static func writeRows<Row: Sendable>(_ stream: RowStream<Row>, _ row: @escaping @Sendable (inout JSONWriter, Row) -> Void,
                                                 to writer: inout any ResponseBodyWriter) async throws {
        var json = JSONWriter(capacity: 300 << 10)
        json.beginObject()
        json.key("data")
        json.beginArray()
        var next: Task<[Row], any Error>? = stream.units > 0 ? Task { try await stream.produce(0) } : nil
        defer { next?.cancel() }
        for unit in 0..<stream.units {
            guard let current = next else { break }
            let rows = try await current.value
            next = unit + 1 < stream.units ? Task { try await stream.produce(unit + 1) } : nil
            for item in rows {
                json.beginObject()
                row(&json, item)
                json.endObject()
                // Out in pieces of about 256 KiB: the buffer never holds a unit's answer.
                if json.bytes.count >= 256 << 10 { try await writer.write(json.takeBuffer()) }
            }
        }
        json.endArray()
        json.key("success")
        json.bool(true)
        json.endObject()
        try await writer.write(json.takeBuffer())
        try await writer.finish(nil)
    }

    /// Rows: `{bucketId, lastUpdated, latency_ms?, minute?, nodeId, nodeStatus, unitId}`.
    func nodesMinute(_ request: Request, context: CollectorRequestContext) async throws -> Response {
        let scope = try CatalogRoutes.scope(context)
        let pairs = try await stats.statusPairs(scope, buckets: Self.list(request, "bucketId", "unitId"))
        let start = try Self.isoDate(request, "startDate", end: false)
        let end = try Self.isoDate(request, "endDate", end: true)
        @Sendable func write(_ json: inout JSONWriter, pair: StatusPair, minute: Int64?, status: NodeLiveness, updated: Date, latency: Double?) {
            json.key("bucketId")
            json.string(pair.bucket)
            json.key("lastUpdated")
            json.time(milliseconds: StatsDates.milliseconds(updated))
            if let latency {
                json.key("latency_ms")
                json.number(latency)
            }
            if let minute {
                json.key("minute")
                json.number(minute)
            }
            json.key("nodeId")
            json.string(pair.node.id)
            json.key("nodeStatus")
            json.string(status.rawValue)
            json.key("unitId")
            json.string(pair.bucket)
        }
        guard start != nil || end != nil else {
            let latest = try await stats.latest(pairs, now: now()).filter(\.hasReport)
            return Self.rows(latest, capacity: 220) { json, row in
                write(&json, pair: row.pair, minute: nil, status: row.status, updated: row.lastUpdated, latency: row.latencyMs)
            }
        }
        // The extension: every minute of the range (default: the hour up to now).
        let to = end ?? now()
        let from = start ?? to.addingTimeInterval(-3600)
        let minutes = try stats.minuteStream(pairs, start: from, end: to)
        return Self.streamRows(minutes) { json, row in
            write(&json, pair: row.pair, minute: row.minute, status: row.status, updated: row.lastUpdated, latency: row.latencyMs)
        }
    }

    // MARK: /stats/nodes/daily

    /// A `ddmmyyyy` integer (or an ISO date) as days since the epoch, within ``UnixTime``'s range.
    static func day(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.uri.queryParameters.get(name).nonEmpty else { return nil }
        if let day = StatsDates.parseDDMMYYYY(text) { return day }
        if let iso = StatsDates.parseISO(text) { return iso.time.day }
        throw APIError(.badRequest, "\(name) must be a date as ddmmyyyy (15012024, or 1022024 for 1 Feb 2024) or ISO-8601, \(UnixTime.rangeDescription)")
    }

    /// Rows: `{bucketId, day, endpoint, latency_ms, nodeId, online, provider, region, status,
    /// storageType, unitId, version}`.
    func nodesDaily(_ request: Request, context: CollectorRequestContext) async throws -> Response {
        let scope = try CatalogRoutes.scope(context)
        let current = now()
        let today = UnixTime(clamping: current).day
        let last = try Self.day(request, "endDate") ?? today
        let first = try Self.day(request, "startDate") ?? max(0, last - 6)
        let pairs = try await stats.statusPairs(scope, buckets: Self.list(request, "bucketId", "unitId"))
        let days = try stats.dayStream(pairs, firstDay: first, lastDay: last, now: current)
        let latest = try await stats.latest(pairs, now: current)
        var statusBySeries: [UInt64: String] = [:]
        for row in latest { statusBySeries[row.pair.series] = row.status.rawValue }
        let fleet = self.stats
        let statuses = statusBySeries
        return Self.streamRows(days) { json, row in
            let node = row.pair.node
            json.key("bucketId")
            json.string(row.pair.bucket)
            json.key("day")
            json.number(row.day)
            json.key("endpoint")
            json.string(node.url)
            json.key("latency_ms")
            json.number(row.averageLatencyMs ?? 0)
            json.key("nodeId")
            json.string(node.id)
            json.key("online")
            json.number(row.onlinePercent)
            json.key("provider")
            json.string(node.provider ?? "")
            json.key("region")
            json.string(node.region)
            json.key("status")
            json.string(statuses[row.pair.series] ?? NodeLiveness.disconnected.rawValue)
            json.key("storageType")
            json.string(fleet.storageType(bucket: row.pair.bucket, node: node, scope: scope))
            json.key("unitId")
            json.string(row.pair.bucket)
            json.key("version")
            json.string(node.version)
        }
    }

    // MARK: /bucket/{id}/status

    struct NodeStatusInfo: Encodable, Sendable {
        var nodeId: String
        var ip: String
        var region: String
        var version: String
        var status: String
        var latency_ms: Int?
        var latencyMs: Int?
        var lastUpdated: String
    }

    struct BucketStatusResponse: Encodable, Sendable {
        var bucketId: String
        /// The same id under its legacy name, on `/unit/{id}/status` (Appendix B).
        var unitId: String?
        var nodeStatus: [NodeStatusInfo]
    }

    func bucketStatus(context: CollectorRequestContext, legacy: Bool) async throws -> JSONResponse<BucketStatusResponse> {
        let scope = try CatalogRoutes.scope(context)
        let bucket = try context.parameters.require("bucketId")
        try await stats.checkBucket(bucket, scope)
        let pairs = try await stats.statusPairs(scope, buckets: [bucket])
        let latest = try await stats.latest(pairs, now: now())
        return JSONResponse(body: BucketStatusResponse(bucketId: bucket, unitId: legacy ? bucket : nil, nodeStatus: latest.map { row in
            let latency = row.latencyMs.map { Int(saturating: $0.rounded()) }
            return NodeStatusInfo(nodeId: row.pair.node.id, ip: row.pair.node.ip, region: row.pair.node.region, version: row.pair.node.version,
                                  status: row.status.rawValue, latency_ms: latency, latencyMs: latency, lastUpdated: StatsDates.format(row.lastUpdated))
        }))
    }

    // MARK: POST /bucket/{id}/stats

    struct DayRequest: Decodable {
        var day: String?
    }

    struct BucketNodeStat: Encodable, Sendable {
        var nodeId: String
        var ip: String
        var host: String
        var perc_uptime: Double
        var avg_latency_ms: Double
        var version: String
        var node_status: String
        var last_updated: String
        var last_latency_ms: Double
    }

    struct BucketNodeStatsResponse: Encodable, Sendable {
        var success = true
        var nodeStats: [BucketNodeStat]
    }

    func bucketNodeStats(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<BucketNodeStatsResponse> {
        let scope = try CatalogRoutes.scope(context)
        let bucket = try context.parameters.require("bucketId")
        let body = try await JSONRequest.decode(DayRequest.self, from: request, context: context)
        guard let text = body.day.nonEmpty, let parsed = StatsDates.parseISO(text) else {
            throw APIError(.badRequest, "day must be an ISO-8601 date or date-time, e.g. 2024-01-15T00:00:00.000Z, \(UnixTime.rangeDescription)")
        }
        let day = parsed.time.day
        try await stats.checkBucket(bucket, scope)
        let current = now()
        let pairs = try await stats.statusPairs(scope, buckets: [bucket])
        let days = try await stats.days(pairs, firstDay: day, lastDay: day, now: current)
        let latest = Dictionary(try await stats.latest(days.map(\.pair), now: current).map { ($0.pair.series, $0) },
                                uniquingKeysWith: { first, _ in first })
        return JSONResponse(body: BucketNodeStatsResponse(nodeStats: days.map { row in
            let node = row.pair.node
            let newest = latest[row.pair.series]
            return BucketNodeStat(
                nodeId: node.id, ip: node.ip, host: FleetStats.hostPattern(url: node.url), perc_uptime: row.onlinePercent,
                avg_latency_ms: row.averageLatencyMs ?? 0, version: node.version,
                node_status: (newest?.status ?? .disconnected).rawValue,
                last_updated: StatsDates.format(newest?.lastUpdated ?? node.lastSeen), last_latency_ms: newest?.latencyMs ?? 0)
        }))
    }

    // MARK: /stats/daily, /stats/minute

    /// Rows: `{bucketId, dwl_bytes, host, latency_ms, repoId, size_change, timestamp, unitId,
    /// upl_bytes}`.
    func traffic(_ request: Request, context: CollectorRequestContext, perDay: Bool) async throws -> Response {
        let scope = try CatalogRoutes.scope(context)
        let current = now()
        let end = try Self.isoDate(request, "endDate", end: true) ?? current
        // Defaults: the last 30 days (daily) or the last hour (minute).
        let start = try Self.isoDate(request, "startDate", end: false) ?? UnixTime(clamping: end).adding(seconds: perDay ? -29 * 86_400 : -3600).date
        guard start <= end else { throw APIError(.badRequest, "startDate must not be after endDate") }
        let series = try await stats.trafficSeries(scope, repos: Self.list(request, "repoId"), buckets: Self.list(request, "bucketId", "unitId"),
                                             hosts: Self.list(request, "hosts", "host"))
        let rows = try stats.trafficStream(series, start: start, end: end, perDay: perDay)
        return Self.streamRows(rows) { json, row in
            json.key("bucketId")
            json.string(row.bucket)
            json.key("dwl_bytes")
            json.number(Self.integer(row.downloadBytes))
            json.key("host")
            json.string(row.host)
            json.key("latency_ms")
            json.number(row.latencyMs ?? 0)
            json.key("repoId")
            json.string(row.repo)
            json.key("size_change")
            json.number(Self.integer(row.sizeChange))
            json.key("timestamp")
            json.number(row.start)
            json.key("unitId")
            json.string(row.bucket)
            json.key("upl_bytes")
            json.number(Self.integer(row.uploadBytes))
        }
    }

    static func integer(_ value: Double) -> Int64 {
        value.isFinite ? Int64(clamping: Int64(exactly: value.rounded()) ?? (value > 0 ? Int64.max : Int64.min)) : 0
    }

    /// A total as the decimal string the client types (`"73400320"`).
    static func decimal(_ value: Double) -> String {
        String(integer(value))
    }

    // MARK: Totals

    /// `{stats: [{bucketId, totalCount, totalDownloadBytes, totalSizeChange, totalUploadBytes,
    /// unitId?}], success: true}`, keys sorted, totals as decimal strings.
    func bucketTotals(_ request: Request, context: CollectorRequestContext, legacy: Bool) async throws -> Response {
        let scope = try CatalogRoutes.scope(context)
        let requested = Self.list(request, "bucketId", "unitId")
        let series = try await stats.trafficSeries(scope, buckets: requested)
        let ids = requested ?? stats.visibleBuckets(scope, series: series)
        let totals = try await stats.totals(series, ids: ids, byRepository: false, now: now())
        return Self.totalsResponse(totals, capacity: 160) { json, total in
            json.key("bucketId")
            json.string(total.id)
            json.key("totalCount")
            json.string(Self.decimal(total.count))
            json.key("totalDownloadBytes")
            json.string(Self.decimal(total.downloadBytes))
            json.key("totalSizeChange")
            json.string(Self.decimal(total.sizeChange))
            json.key("totalUploadBytes")
            json.string(Self.decimal(total.uploadBytes))
            if legacy {
                json.key("unitId")
                json.string(total.id)
            }
        }
    }

    /// `{stats: [{repoId, totalDownloadBytes, totalSizeChange, totalUploadBytes}], success: true}`.
    func repoTotals(_ request: Request, context: CollectorRequestContext) async throws -> Response {
        let scope = try CatalogRoutes.scope(context)
        let requested = Self.list(request, "repoId")
        let series = try await stats.trafficSeries(scope, repos: requested)
        let ids = requested ?? stats.visibleRepositories(scope, series: series)
        let totals = try await stats.totals(series, ids: ids, byRepository: true, now: now())
        return Self.totalsResponse(totals, capacity: 120) { json, total in
            json.key("repoId")
            json.string(total.id)
            json.key("totalDownloadBytes")
            json.string(Self.decimal(total.downloadBytes))
            json.key("totalSizeChange")
            json.string(Self.decimal(total.sizeChange))
            json.key("totalUploadBytes")
            json.string(Self.decimal(total.uploadBytes))
        }
    }

    /// `{stats: [...], success: true}` around one object per total written by `row`.
    static func totalsResponse(_ totals: [TrafficTotals], capacity: Int, _ row: (inout JSONWriter, TrafficTotals) -> Void) -> Response {
        var json = JSONWriter(capacity: 64 + totals.count * capacity)
        json.beginObject()
        json.key("stats")
        json.beginArray()
        for total in totals {
            json.beginObject()
            row(&json, total)
            json.endObject()
        }
        json.endArray()
        json.key("success")
        json.bool(true)
        json.endObject()
        return json.response()
    }
}

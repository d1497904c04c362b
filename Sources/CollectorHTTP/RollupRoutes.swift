import CollectorModel
import FlashbackWire
import Foundation
import Hummingbird
import Stats
import TimeSeries

/// The generic rollup read API, `GET /api/v1/rollups`: minute or day rollups of any series of
/// the caller's organization (a node token or any member's user token), filtered by tags, or
/// only their sample count (`aggregate=count`).
struct RollupRoutes {
    /// The local store, or whatever ``RollupSource`` answers for it.
    let source: any RollupSource
    let authentication: CallerAuthentication
    let now: @Sendable () -> Date

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/api/v1/rollups") { request, context -> JSONResponse<RollupsResponse> in
            try await rollups(request, context: context)
        }
    }

    struct RollupsResponse: Encodable, Sendable {
        struct Row: Encodable, Sendable {
            var start: Int64
            var count: UInt64
            var sum: Double
            var min: Double
            var max: Double
            var first: Double
            var last: Double
            var firstTime: Int64
            var lastTime: Int64
            var online: UInt64
        }

        struct Series: Encodable, Sendable {
            var measurement: String
            var field: String
            var tags: [String: String]
            var rows: [Row]
        }

        var success = true
        var series: [Series]?
        var count: UInt64?
    }

    func rollups(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<RollupsResponse> {
        let query = request.uri.queryParameters
        let organization = try await authentication.caller(request).organization
        guard let measurement = query.get("measurement").nonEmpty, let fieldName = query.get("field").nonEmpty else {
            throw APIError(.badRequest, "measurement and field are required")
        }
        let resolution = query.get("resolution").nonEmpty ?? "minute"
        guard resolution == "minute" || resolution == "day" else { throw APIError(.badRequest, "resolution must be minute or day") }
        let current = UnixTime(clamping: now())
        let start = try QueryParameter.unixTime(request, "start") ?? current.adding(seconds: -3600)
        let end = try QueryParameter.unixTime(request, "end") ?? current.adding(seconds: 60)
        guard end > start else { throw APIError(.badRequest, "end must be after start") }
        var filters: [String: String] = [:]
        for (key, value) in query where key.hasPrefix("tag.") {
            filters[String(key.dropFirst(4))] = String(value)
        }
        guard let field = source.fieldID(fieldName) else {
            return JSONResponse(body: query.get("aggregate") == "count" ? RollupsResponse(series: nil, count: 0) : RollupsResponse(series: [], count: nil))
        }
        var total: UInt64 = 0
        var series: [RollupsResponse.Series] = []
        let matching = try await source.series(organization: organization, measurement: measurement, from: 0).new.compactMap { id, key -> (UInt64, [String: String])? in
            let tags = Dictionary(key.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            return filters.allSatisfy({ tags[$0.key] == $0.value }) ? (id, tags) : nil
        }
        let perSeries = try await source.rollups(series: matching.map(\.0), fields: [field], start: start.seconds, end: end.seconds,
                                                 perDay: resolution == "day", statistics: .all)
        for ((_, tags), perField) in zip(matching, perSeries) {
            let rows = perField[0]
            total += rows.reduce(0) { $0 + $1.rollup.count }
            if !rows.isEmpty {
                series.append(RollupsResponse.Series(measurement: measurement, field: fieldName, tags: tags, rows: rows.map {
                    RollupsResponse.Row(start: $0.start, count: $0.rollup.count, sum: $0.rollup.sum, min: $0.rollup.min, max: $0.rollup.max,
                                        first: $0.rollup.first, last: $0.rollup.last, firstTime: $0.rollup.firstTime,
                                        lastTime: $0.rollup.lastTime, online: $0.rollup.onlineCount)
                }))
            }
        }
        if query.get("aggregate") == "count" { return JSONResponse(body: RollupsResponse(series: nil, count: total)) }
        return JSONResponse(body: RollupsResponse(series: series, count: nil))
    }
}

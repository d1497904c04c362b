import CollectorAuth
import CollectorModel
import CompressNIO
import FlashbackWire
import Foundation
import HTTPTypes
import Hummingbird
import Ingest
import NIOCore
import Registry
import TimeSeries

/// InfluxDB-compatible ingest (`POST /write`, `POST /api/v2/write`, `GET /ping`) and the generic
/// rollup read API (`GET /api/v1/rollups`).
///
/// Writers: a node with its `nodeToken` (`Bearer` or `Token`), writing only its own series (a
/// line's `node` tag must be absent, which adds it, or equal the node id), or a user token of an
/// ADMINISTRATORS/OWNER, writing for the token's organization. A 204 is sent only after the
/// request's samples are committed to RocksDB with the WAL on.
struct IngestRoutes {
    let store: TimeSeriesStore
    let registry: NodeRegistry
    let tokens: TokenAuthority
    let syncWrites: Bool
    let admission: IngestAdmission
    let now: @Sendable () -> Date
    let seriesSections: SeriesSectionCache
    let metrics: IngestMetrics
    let lineLimits: LineLimits

    /// Who writes, and for which organization.
    enum Writer {
        case node(BridgeNode)
        case organization(String)

        var organization: String {
            switch self {
            case .node(let node): return node.organization ?? ""
            case .organization(let organization): return organization
            }
        }
    }

    /// The writer of a request, or 401/403.
    func writer(_ request: Request) async throws -> Writer {
        try await caller(request, requireAdministrator: true)
    }

    /// A node or any member of an organization (reads), or 401.
    func reader(_ request: Request) async throws -> Writer {
        try await caller(request, requireAdministrator: false)
    }

    private func caller(_ request: Request, requireAdministrator: Bool) async throws -> Writer {
        guard let value = request.headers[.authorization] else {
            throw APIError(.unauthorized, "missing token: send a node token or an organization token as Authorization: Bearer", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, ["bearer", "token"].contains(parts[0].lowercased()) else {
            throw APIError(.unauthorized, "unsupported authorization scheme")
        }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        if token.hasPrefix("fbn1.") {
            guard let node = registry.authenticate(nodeToken: token) else { throw APIError(.unauthorized, "invalid or revoked node token") }
            return .node(node)
        }
        let identity: CallerIdentity
        do {
            identity = try await tokens.verify(token)
        } catch {
            throw TokenAuthMiddleware.unauthorized(error)
        }
        guard !requireAdministrator || identity.role.canAdministerOrganization else {
            throw APIError(.forbidden, "Insufficient permissions: only OWNER and ADMINISTRATOR tokens (or node tokens) may write")
        }
        return .organization(identity.organization)
    }

    struct WriteError: Encodable, Sendable {
        var success = false
        var code = "invalid"
        var message: String
        /// InfluxDB 1.x clients read `error`.
        var error: String
        var line: Int?
        var rejected: Int
        var accepted: Int
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/ping") { _, _ in Response(status: .noContent, headers: [.init("X-Influxdb-Version")!: "flashback-collector"]) }
        router.head("/ping") { _, _ in Response(status: .noContent) }
        router.post("/write") { request, context in
            try await write(request, context: context, precision: request.uri.queryParameters.get("precision"))
        }
        router.post("/api/v2/write") { request, context in
            try await write(request, context: context, precision: request.uri.queryParameters.get("precision"))
        }
        router.get("/api/v1/rollups") { request, context -> JSONResponse<RollupsResponse> in
            try await rollups(request, context: context)
        }
    }

    func write(_ request: Request, context: CollectorRequestContext, precision text: String?) async throws -> Response {
        let writer = try await writer(request)
        guard let precision = TimestampPrecision(parameter: text ?? "ns") else {
            throw APIError(.badRequest, "precision must be one of ns, us, ms, s (or n, u)")
        }
        let weight = min(request.headers[.contentLength].flatMap { Int($0) } ?? context.maxUploadSize, context.maxUploadSize)
        guard admission.tryAcquire(weight) else {
            metrics.recordThrottled(.http)
            throw APIError(.serviceUnavailable, "the write path is saturated (\(admission.limit) bytes in flight); retry shortly",
                           headers: [.retryAfter: "1"])
        }
        defer { admission.release(weight) }
        let encoding = request.headers[.contentEncoding]?.lowercased() ?? "identity"
        guard encoding == "identity" || encoding == "gzip" else {
            throw APIError(.unsupportedMediaType, "Content-Encoding \(encoding) is not supported; send gzip or an uncompressed body")
        }
        var body = try await JSONRequest.body(of: request, context: context)
        if encoding == "gzip" {
            do {
                // The limit holds after decompression too: a small bomb cannot inflate past it.
                body = try body.decompress(with: .gzip(), maxSize: context.maxUploadSize)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw APIError(.contentTooLarge, "decompressed request body is larger than \(context.maxUploadSize) bytes")
            } catch {
                throw APIError(.badRequest, "request body is not valid gzip")
            }
        }
        let parsed = body.withUnsafeReadableBytes { lineLimits.parser(precision: precision, seriesCache: seriesSections).parse($0) }
        let receivedAt = now()
        let nowNanos = Int64(saturatingNanosecondsOf: receivedAt)
        var node: BridgeNode?
        if case .node(let writing) = writer { node = writing }
        let mapped = SeriesBatch.lines(parsed, organization: writer.organization, node: node?.id, nowNanos: nowNanos)
        var errors = parsed.errors + mapped.errors
        errors.sort { $0.line < $1.line }
        let outcome = try store(mapped.batch, now: receivedAt, protocol: .http, lineErrors: errors)
        if case .node(let node) = writer { registry.markSeen(nodeID: node.id) }
        let rejectedLines = errors.count
        if rejectedLines == 0, outcome.rejectedTotal == 0 {
            return Response(status: .noContent)
        }
        // Partial write, as InfluxDB: the good lines are stored; the answer names the first bad one.
        let message: String
        if let first = errors.first {
            message = "partial write: line \(first.line): \(first.detail) (\(rejectedLines) line(s) rejected)"
        } else {
            message = "partial write: \(outcome.firstRejection ?? "samples rejected") (\(outcome.rejectedTotal) sample(s) rejected)"
        }
        let error = WriteError(message: message, error: message, line: errors.first?.line,
                               rejected: rejectedLines + outcome.rejectedTotal, accepted: outcome.stored)
        return try JSONResponse(status: .badRequest, body: error).response(from: request, context: context)
    }

    /// Commits `points` and counts the write (samples by outcome, refused lines, duration).
    func store(_ points: [SeriesPoint], now: Date, protocol proto: IngestProtocol, lineErrors: [LineError] = []) throws -> WriteOutcome {
        try store(SeriesBatch(points), now: now, protocol: proto, lineErrors: lineErrors)
    }

    /// Commits `batch` and counts the write (samples by outcome, refused lines, duration).
    func store(_ batch: SeriesBatch, now: Date, protocol proto: IngestProtocol, lineErrors: [LineError] = []) throws -> WriteOutcome {
        let started = ContinuousClock.now
        do {
            let outcome = try store.write(batch, now: now, sync: syncWrites)
            metrics.record(proto, outcome: outcome, lineErrors: lineErrors, duration: ContinuousClock.now - started)
            return outcome
        } catch let error as TimeSeriesError {
            metrics.recordWriteFailure(proto)
            if case .backlogged = error {
                throw APIError(.serviceUnavailable, "the write path is saturated: \(error)", headers: [.retryAfter: "1"])
            }
            throw error
        } catch {
            metrics.recordWriteFailure(proto)
            throw error
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
        let organization: String
        switch try await reader(request) {
        case .node(let node): organization = node.organization ?? ""
        case .organization(let org): organization = org
        }
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
        guard let field = store.index.existingFieldID(fieldName) else {
            return JSONResponse(body: query.get("aggregate") == "count" ? RollupsResponse(series: nil, count: 0) : RollupsResponse(series: [], count: nil))
        }
        var total: UInt64 = 0
        var series: [RollupsResponse.Series] = []
        for (id, key) in store.index.series(organization: organization, measurement: measurement) {
            let tags = Dictionary(key.tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
            guard filters.allSatisfy({ tags[$0.key] == $0.value }) else { continue }
            let rows = try store.rollups(series: id, field: field, start: start.seconds, end: end.seconds, perDay: resolution == "day")
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

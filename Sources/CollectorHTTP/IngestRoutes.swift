import CollectorModel
import Foundation
import HTTPTypes
import Hummingbird
import Ingest
import Ingestion
import NIOCore
import TimeSeries

/// InfluxDB-compatible ingest: `POST /write`, `POST /api/v2/write`, `GET /ping`.
///
/// Writers: a node with its `nodeToken` (`Bearer` or `Token`), writing only its own series (a
/// line's `node` tag must be absent, which adds it, or equal the node id), or a user token of an
/// ADMINISTRATORS/OWNER, writing for the token's organization. A 204 is sent only after the
/// request's samples are committed to RocksDB with the WAL on.
struct IngestRoutes {
    let writer: IngestWriter
    let stream: IngestStream
    let authentication: CallerAuthentication

    /// The writer of a request: a node, or an administrator of an organization (401/403 otherwise).
    func writer(_ request: Request) async throws -> SampleWriter {
        let caller = try await authentication.caller(request)
        if case .user(let identity) = caller, !identity.role.canAdministerOrganization {
            throw APIError(.forbidden, "Insufficient permissions: only OWNER and ADMINISTRATOR tokens (or node tokens) may write")
        }
        return caller.writer
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
    }

    func write(_ request: Request, context: CollectorRequestContext, precision text: String?) async throws -> Response {
        let sampleWriter = try await writer(request)
        guard let precision = TimestampPrecision(parameter: text ?? "ns") else {
            throw APIError(.badRequest, "precision must be one of ns, us, ms, s (or n, u)")
        }
        let weight = min(request.headers[.contentLength].flatMap { Int($0) } ?? context.maxUploadSize, context.maxUploadSize)
        let result = try await stream.admitted(weight: weight, protocol: .http) {
            let encoding = try IngestStream.ContentEncoding(header: request.headers[.contentEncoding])
            let body = try IngestStream.decode(try await JSONRequest.body(of: request, context: context), encoding, limit: context.maxUploadSize)
            return try body.withUnsafeReadableBytes { try writer.writeLines($0, precision: precision, writer: sampleWriter) }
        }
        let errors = result.lineErrors
        let outcome = result.stored
        if errors.isEmpty, outcome.rejectedTotal == 0 {
            return Response(status: .noContent)
        }
        // Partial write, as InfluxDB: the good lines are stored; the answer names the first bad one.
        let message: String
        if let first = errors.first {
            message = "partial write: line \(first.line): \(first.detail) (\(errors.count) line(s) rejected)"
        } else {
            message = "partial write: \(outcome.firstRejection ?? "samples rejected") (\(outcome.rejectedTotal) sample(s) rejected)"
        }
        let error = WriteError(message: message, error: message, line: errors.first?.line,
                               rejected: errors.count + outcome.rejectedTotal, accepted: outcome.stored)
        return try JSONResponse(status: .badRequest, body: error).response(from: request, context: context)
    }
}

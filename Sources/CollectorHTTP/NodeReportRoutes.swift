import CollectorModel
import Foundation
import Hummingbird
import Registry
import Stats
import TimeSeries

/// The node status report (`POST /status`, alias `POST /node/status`; flashback-api.md §7.4) and
/// bucket-traffic reports (`POST /stats/report`; the `StatsData` fields of §8.1).
struct NodeReportRoutes {
    let ingest: IngestRoutes

    /// `NodeStatusRequest`.
    struct StatusRequest: Decodable {
        var ip: String
        var region: String
        var timestamp: NodeTimestamp
        var signature: String
        var id_org: String?
        var buckets: [BucketStatus]

        struct BucketStatus: Decodable {
            var unitId: String?
            var bucketId: String?
            var status: String
            var latencyMs: Double?
            var latency_ms: Double?
            var createdAt: String?
        }
    }

    /// One `StatsData` record.
    struct TrafficRecord: Decodable {
        var timestamp: Int64?
        var repoId: String?
        var unitId: String?
        var bucketId: String?
        var upl_bytes: Double?
        var dwl_bytes: Double?
        var size_change: Double?
        var requests: Double?
        var latency_ms: Double?
        var host: String?
    }

    struct ReportResponse: Encodable, Sendable {
        var success = true
        var message: String
        var stored: Int
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        for path in ["/status", "/node/status"] {
            router.post(RouterPath(path)) { request, context -> JSONResponse<ReportResponse> in
                try await status(request, context: context)
            }
        }
        router.post("/stats/report") { request, context -> JSONResponse<ReportResponse> in
            try await traffic(request, context: context)
        }
    }

    /// An ISO-8601 date-time (with or without fractions) within ``UnixTime``'s range; `nil` when
    /// absent, `.failure` when present and not such a time.
    static func time(_ text: String?) -> Result<UnixTime, Refusal>? {
        guard let text, !text.isEmpty else { return nil }
        guard let parsed = ISO8601.parse(text), !parsed.dateOnly, let time = UnixTime(seconds: parsed.seconds) else { return .failure(Refusal()) }
        return .success(time)
    }

    struct Refusal: Error {}

    func status(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<ReportResponse> {
        let body = try await JSONRequest.decode(StatusRequest.self, from: request, context: context)
        let message = SignedNodeMessage(ip: body.ip, region: body.region, timestamp: body.timestamp, signature: body.signature, organization: body.id_org.nonEmpty)
        try RegistryRoutes.validate(message)
        guard body.buckets.count <= 10_000 else { throw APIError(.badRequest, "at most 10000 buckets per report") }
        _ = try registryCall { try ingest.registry.verify(message) }
        guard let node = ingest.registry.node(organization: message.organization, ip: message.ip) else {
            throw APIError(.notFound, "Node \(message.ip) is not registered")
        }
        let now = ingest.now()
        var points: [SeriesPoint] = []
        for (index, bucket) in body.buckets.enumerated() {
            guard let id = bucket.unitId.nonEmpty ?? bucket.bucketId.nonEmpty else {
                throw APIError(.badRequest, "buckets[\(index)] needs unitId")
            }
            guard let status = NodeStatusValue.value(of: bucket.status) else {
                throw APIError(.badRequest, "buckets[\(index)].status must be ONLINE, OFFLINE or DISCONNECTED")
            }
            var fields: [(name: String, value: Double)] = [(name: "status", value: status)]
            if let latency = bucket.latencyMs ?? bucket.latency_ms, latency.isFinite, latency >= 0 { fields.append((name: "latency_ms", value: latency)) }
            let nanos: Int64
            switch Self.time(bucket.createdAt) {
            case .success(let time): nanos = time.nanoseconds
            case .failure: throw APIError(.badRequest, "buckets[\(index)].createdAt must be an ISO-8601 date-time \(UnixTime.rangeDescription)")
            case nil: nanos = Int64(saturatingNanosecondsOf: now)
            }
            points.append(SeriesPoint(
                organization: node.organization ?? "", measurement: "node_status",
                tags: [(key: "bucket", value: id), (key: "node", value: node.id)], fields: fields,
                timestamp: nanos))
        }
        let outcome = try ingest.store(points, now: now, protocol: .status)
        let latencies = body.buckets.compactMap { $0.latencyMs ?? $0.latency_ms }.filter { $0.isFinite && $0 >= 0 }
        ingest.registry.markSeen(nodeID: node.id, latencyMs: latencies.isEmpty ? nil : latencies.reduce(0, +) / Double(latencies.count))
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "status partly refused: \(outcome.firstRejection ?? "samples rejected")")
        }
        return JSONResponse(body: ReportResponse(message: "Status recorded", stored: outcome.stored))
    }

    func traffic(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<ReportResponse> {
        let writer = try await ingest.writer(request)
        let records = try await JSONRequest.decode([TrafficRecord].self, from: request, context: context)
        guard records.count <= 100_000 else { throw APIError(.badRequest, "at most 100000 records per report") }
        let now = ingest.now()
        var points: [SeriesPoint] = []
        for (index, record) in records.enumerated() {
            guard let bucket = record.bucketId.nonEmpty ?? record.unitId.nonEmpty else { throw APIError(.badRequest, "record \(index) needs bucketId or unitId") }
            var tags: [(key: String, value: String)] = [(key: "bucket", value: bucket)]
            if let repo = record.repoId.nonEmpty { tags.append((key: "repo", value: repo)) }
            if let host = record.host.nonEmpty { tags.append((key: "host", value: host)) }
            if case .node(let node) = writer { tags.append((key: "node", value: node.id)) }
            tags.sort { $0.key < $1.key }
            let values: [(String, Double?)] = [("upl_bytes", record.upl_bytes), ("dwl_bytes", record.dwl_bytes), ("size_change", record.size_change),
                                               ("requests", record.requests), ("latency_ms", record.latency_ms)]
            let fields = values.compactMap { name, value in value.flatMap { $0.isFinite ? (name: name, value: $0) : nil } }
            guard !fields.isEmpty else { throw APIError(.badRequest, "record \(index) has no numeric field") }
            let nanos: Int64
            if let seconds = record.timestamp {
                guard let time = UnixTime(seconds: seconds) else {
                    throw APIError(.badRequest, "[\(index)].timestamp must be Unix seconds \(UnixTime.rangeDescription)")
                }
                nanos = time.nanoseconds
            } else {
                nanos = Int64(saturatingNanosecondsOf: now)
            }
            points.append(SeriesPoint(organization: writer.organization, measurement: "bucket_traffic", tags: tags, fields: fields, timestamp: nanos))
        }
        let outcome = try ingest.store(points, now: now, protocol: .report)
        if case .node(let node) = writer { ingest.registry.markSeen(nodeID: node.id) }
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "report partly refused: \(outcome.firstRejection ?? "samples rejected") (\(outcome.rejectedTotal) sample(s); \(outcome.stored) stored)")
        }
        return JSONResponse(body: ReportResponse(message: "Report recorded", stored: outcome.stored))
    }
}

import CollectorModel
import FlashbackWire
import Foundation
import Hummingbird
import Registry
import Stats
import TimeSeries

/// The node status report (`POST /status`, alias `POST /node/status`; flashback-api.md §7.4) and
/// bucket-traffic reports (`POST /stats/report`; the `StatsData` fields of §8.1).
struct NodeReportRoutes {
    let ingest: IngestRoutes

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

    func status(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<ReportResponse> {
        let body = try await JSONRequest.decode(StatusRequest.self, from: request, context: context)
        try body.check()
        let message = SignedNodeMessage(ip: body.ip, region: body.region, timestamp: body.timestamp, signature: body.signature, organization: body.id_org.nonEmpty)
        _ = try registryCall { try ingest.registry.verify(message) }
        guard let node = ingest.registry.node(organization: message.organization, ip: message.ip) else {
            throw APIError(.notFound, "Node \(message.ip) is not registered")
        }
        let now = ingest.now()
        let nowNanos = Int64(saturatingNanosecondsOf: now)
        var points: [SeriesPoint] = []
        for (index, bucket) in body.buckets.enumerated() {
            let entry = try bucket.checked(index: index)
            var fields: [(name: String, value: Double)] = [(name: "status", value: entry.status)]
            if let latency = entry.latency { fields.append((name: "latency_ms", value: latency)) }
            points.append(SeriesPoint(
                organization: node.organization ?? "", measurement: "node_status",
                tags: [(key: "bucket", value: entry.bucket), (key: "node", value: node.id)], fields: fields,
                timestamp: entry.time?.nanoseconds ?? nowNanos))
        }
        let outcome = try ingest.store(points, now: now, protocol: .status)
        let latencies = body.buckets.compactMap(\.latency)
        ingest.registry.markSeen(nodeID: node.id, latencyMs: latencies.isEmpty ? nil : latencies.reduce(0, +) / Double(latencies.count))
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "status partly refused: \(outcome.firstRejection ?? "samples rejected")")
        }
        return JSONResponse(body: ReportResponse(message: "Status recorded", stored: outcome.stored))
    }

    func traffic(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<ReportResponse> {
        let writer = try await ingest.writer(request)
        let records = try await JSONRequest.decode([TrafficRecord].self, from: request, context: context)
        guard records.count <= TrafficRecord.maxRecords else { throw APIError(.badRequest, "at most \(TrafficRecord.maxRecords) records per report") }
        let now = ingest.now()
        let nowNanos = Int64(saturatingNanosecondsOf: now)
        var points: [SeriesPoint] = []
        for (index, record) in records.enumerated() {
            var entry = try record.checked(index: index)
            if case .node(let node) = writer { entry.tags.append((key: "node", value: node.id)) }
            entry.tags.sort { $0.key < $1.key }
            points.append(SeriesPoint(organization: writer.organization, measurement: "bucket_traffic", tags: entry.tags, fields: entry.fields,
                                      timestamp: entry.time?.nanoseconds ?? nowNanos))
        }
        let outcome = try ingest.store(points, now: now, protocol: .report)
        if case .node(let node) = writer { ingest.registry.markSeen(nodeID: node.id) }
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "report partly refused: \(outcome.firstRejection ?? "samples rejected") (\(outcome.rejectedTotal) sample(s); \(outcome.stored) stored)")
        }
        return JSONResponse(body: ReportResponse(message: "Report recorded", stored: outcome.stored))
    }
}

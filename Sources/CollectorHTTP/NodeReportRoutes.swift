import CollectorModel
import FlashbackWire
import Hummingbird
import Ingestion
import Registry
import TimeSeries

/// The node status report (`POST /status`, alias `POST /node/status`; flashback-api.md §7.4) and
/// bucket-traffic reports (`POST /stats/report`; the `StatsData` fields of §8.1).
struct NodeReportRoutes {
    let registry: NodeRegistry
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
        let message = SignedNodeMessage(ip: body.ip, region: body.region, timestamp: body.timestamp, signature: body.signature, organization: body.organization)
        _ = try await registry.verify(message)
        guard let node = registry.node(organization: message.organization, ip: message.ip) else {
            throw APIError(.notFound, "Node \(message.ip) is not registered")
        }
        let entries = try body.buckets.enumerated().map { index, bucket in
            let entry = try bucket.checked(index: index)
            return IngestWriter.StatusEntry(bucket: entry.bucket, status: entry.status, latencyMs: entry.latency, time: entry.time)
        }
        let outcome = try ingest.writer.writeStatus(node: node.id, organization: node.organization ?? "", entries: entries)
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "status partly refused: \(outcome.firstRejection ?? "samples rejected")")
        }
        return JSONResponse(body: ReportResponse(message: "Status recorded", stored: outcome.stored))
    }

    func traffic(_ request: Request, context: CollectorRequestContext) async throws -> JSONResponse<ReportResponse> {
        let writer = try await ingest.writer(request)
        let records = try await JSONRequest.decode([TrafficRecord].self, from: request, context: context)
        guard records.count <= TrafficRecord.maxRecords else { throw APIError(.badRequest, "at most \(TrafficRecord.maxRecords) records per report") }
        let entries = try records.enumerated().map { index, record in
            let entry = try record.checked(index: index)
            return IngestWriter.TrafficEntry(tags: entry.tags, fields: entry.fields, time: entry.time)
        }
        let outcome = try ingest.writer.writeTraffic(entries, writer: writer)
        if outcome.rejectedTotal > 0 {
            throw APIError(.badRequest, "report partly refused: \(outcome.firstRejection ?? "samples rejected") (\(outcome.rejectedTotal) sample(s); \(outcome.stored) stored)")
        }
        return JSONResponse(body: ReportResponse(message: "Report recorded", stored: outcome.stored))
    }
}

import Catalog
import CollectorAuth
import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Ingestion
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import MetricsTestKit
import NIOCore
import Registry
import Testing
import TimeSeries

/// `/write`, `/api/v2/write`, `/ping` and `/api/v1/rollups` in-process on a real RocksDB.
@Suite("Ingest routes")
struct IngestRoutesTests {
    let directory = TemporaryDirectory(prefix: "ingest-http")
    static let now = Date(timeIntervalSince1970: 1_760_000_000)

    struct Harness: Sendable {
        let tokens: TokenAuthority
        let registry: NodeRegistry

        func orgAuth(_ organization: String, _ role: OrganizationRole = .owner) async throws -> HTTPFields {
            let token = try await tokens.mint(for: CallerIdentity(organization: organization, user: "u", role: role), lifetime: 600)
            return [.authorization: "Bearer \(token)"]
        }
    }

    func withHarness(admission: IngestAdmission = IngestAdmission(limit: 1 << 20), metrics: TestMetrics = TestMetrics(),
                     lineLimits: LineLimits = LineLimits(), _ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let clock: @Sendable () -> Date = { IngestRoutesTests.now }
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let registry = try NodeRegistry(storage: storage, secrets: secrets, clock: clock, logger: Logger(label: "test"))
        let router = CollectorApplication.makeRouter(.init(
            storage: storage, tokens: tokens, registry: registry,
            catalog: try StorageCatalog(storage: storage, secrets: secrets, logger: Logger(label: "test")),
            timeSeries: try TimeSeriesStore(database: storage.database), admission: admission, readiness: ServiceReadiness(), version: "test", clock: clock,
            metrics: IngestMetrics(factory: metrics), lineLimits: lineLimits))
        try await Application(router: router).test(.router) { client in try await body(Harness(tokens: tokens, registry: registry), client) }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any], "\(String(buffer: response.body))")
    }

    static func count(_ client: any TestClientProtocol, _ auth: HTTPFields, measurement: String, field: String) async throws -> Int {
        let start = Int64(now.timeIntervalSince1970) - 86_400
        let response = try await client.execute(uri: "/api/v1/rollups?measurement=\(measurement)&field=\(field)&start=\(start)&end=\(start + 2 * 86_400)&aggregate=count", method: .get, headers: auth)
        #expect(response.status == .ok)
        return try json(response)["count"] as? Int ?? -1
    }

    static func rows(_ client: any TestClientProtocol, _ auth: HTTPFields, resolution: String) async throws -> String {
        let start = Int64(now.timeIntervalSince1970) - 86_400
        let response = try await client.execute(uri: "/api/v1/rollups?measurement=bucket_traffic&field=upl_bytes&resolution=\(resolution)&start=\(start)&end=\(start + 2 * 86_400)", method: .get, headers: auth)
        return String(buffer: response.body)
    }

    /// Lines over three minutes, 20 s apart, of one series.
    static func body(minutes: Range<Int>) -> String {
        let base = Int64(now.timeIntervalSince1970) - 3600
        return minutes.flatMap { minute in
            (0..<3).map { step in
                let seconds = base + Int64(minute * 60 + step * 20)
                return "bucket_traffic,bucket=b1,repo=r1 upl_bytes=\(100 * (minute + 1) + step)i,dwl_bytes=\(step)i \(seconds)"
            }
        }.joined(separator: "\n")
    }

    @Test func retriesAndLateDataGiveTheSameRollups() async throws {
        try await withHarness { harness, client in
            let once = try await harness.orgAuth("org-once")
            let retried = try await harness.orgAuth("org-retried")
            let late = try await harness.orgAuth("org-late")

            #expect(try await client.execute(uri: "/write?precision=s", method: .post, headers: once, body: ByteBuffer(string: Self.body(minutes: 0..<3))).status == .noContent)
            for _ in 0..<3 {
                #expect(try await client.execute(uri: "/write?precision=s", method: .post, headers: retried, body: ByteBuffer(string: Self.body(minutes: 0..<3))).status == .noContent)
            }
            // The last minute first, then the earlier ones (v2 API, same precision).
            #expect(try await client.execute(uri: "/api/v2/write?org=x&bucket=y&precision=s", method: .post, headers: late, body: ByteBuffer(string: Self.body(minutes: 2..<3))).status == .noContent)
            #expect(try await client.execute(uri: "/api/v2/write?org=x&bucket=y&precision=s", method: .post, headers: late, body: ByteBuffer(string: Self.body(minutes: 0..<2))).status == .noContent)

            #expect(try await Self.count(client, once, measurement: "bucket_traffic", field: "upl_bytes") == 9)
            #expect(try await Self.count(client, retried, measurement: "bucket_traffic", field: "upl_bytes") == 9)
            for resolution in ["minute", "day"] {
                let reference = try await Self.rows(client, once, resolution: resolution)
                #expect(reference.contains(#""count":3"#) || reference.contains(#""count":9"#))
                #expect(try await Self.rows(client, retried, resolution: resolution) == reference)
                #expect(try await Self.rows(client, late, resolution: resolution) == reference)
            }
            let day = try Self.json(try await client.execute(uri: "/api/v1/rollups?measurement=bucket_traffic&field=upl_bytes&resolution=day&start=\(Int64(Self.now.timeIntervalSince1970) - 86_400)&end=\(Int64(Self.now.timeIntervalSince1970) + 86_400)", method: .get, headers: once))
            let row = try #require(((day["series"] as? [[String: Any]])?.first?["rows"] as? [[String: Any]])?.first)
            #expect(row["count"] as? Int == 9)
            let expectedSum: Double = 1809  // (100+101+102) + (200+201+202) + (300+301+302)
            #expect(row["sum"] as? Double == expectedSum)
            // Another organization sees none of it.
            let other = try await harness.orgAuth("org-other")
            #expect(try await Self.count(client, other, measurement: "bucket_traffic", field: "upl_bytes") == 0)
        }
    }

    @Test func partialWritesStoreGoodLinesAndNameTheFirstBadOne() async throws {
        let metrics = TestMetrics()
        try await withHarness(metrics: metrics) { harness, client in
            let auth = try await harness.orgAuth("org-a")
            let seconds = Int64(Self.now.timeIntervalSince1970)
            let body = """
            m v=1 \(seconds)
            m v=oops \(seconds)
            m v=3 \(seconds + 1)
            m,bad tag v=4
            m v=5 \(seconds - 3 * 86_400)
            """
            let response = try await client.execute(uri: "/write?precision=s", method: .post, headers: auth, body: ByteBuffer(string: body))
            #expect(response.status == .badRequest)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            let error = try Self.json(response)
            #expect(error["success"] as? Bool == false)
            #expect(error["line"] as? Int == 2)
            #expect((error["error"] as? String)?.contains("line 2: invalid value") == true, "\(error)")
            #expect(error["rejected"] as? Int == 3)
            #expect(error["accepted"] as? Int == 2)
            #expect(try await Self.count(client, auth, measurement: "m", field: "v") == 2)

            let old = try await client.execute(uri: "/write?precision=s", method: .post, headers: auth, body: ByteBuffer(string: "m v=9 \(seconds - 3 * 86_400)"))
            #expect(old.status == .badRequest)
            #expect((try Self.json(old)["message"] as? String)?.contains("older than") == true)
            #expect(try await client.execute(uri: "/write?precision=h", method: .post, headers: auth, body: ByteBuffer(string: "m v=1")).status == .badRequest)
            #expect(try await client.execute(uri: "/write", method: .post, headers: auth.merging([.contentEncoding: "br"]), body: ByteBuffer(string: "m v=1")).status == .unsupportedMediaType)
        }
        // Counted by protocol and reason: two bodies reached the store.
        func counter(_ label: String, _ dimensions: [(String, String)]) throws -> Int64 {
            try metrics.expectCounter(label, dimensions).totalValue
        }
        #expect(try counter("flashback_ingest_samples_stored_total", [("protocol", "http")]) == 2)
        #expect(try counter("flashback_ingest_samples_received_total", [("protocol", "http")]) == 4)
        #expect(try counter("flashback_ingest_samples_rejected_total", [("protocol", "http"), ("reason", "too_old")]) == 2)
        #expect(try counter("flashback_ingest_samples_rejected_total", [("protocol", "http"), ("reason", "series_limit")]) == 0)
        #expect(try counter("flashback_ingest_lines_rejected_total", [("protocol", "http"), ("reason", "invalid_field_value")]) == 1)
        #expect(try counter("flashback_ingest_lines_rejected_total", [("protocol", "http"), ("reason", "invalid_tag")]) == 1)
        #expect(try metrics.expectTimer("flashback_ingest_write_duration_seconds", [("protocol", "http")]).values.count == 2)
    }

    @Test func lineLengthAndTagLimitsAreConfigurable() async throws {
        let metrics = TestMetrics()
        try await withHarness(metrics: metrics, lineLimits: LineLimits(maxLineLength: 80, maxTagsPerSeries: 2)) { harness, client in
            let auth = try await harness.orgAuth("org-l")
            let seconds = Int64(Self.now.timeIntervalSince1970)
            let body = """
            m,a=1,b=2 v=1 \(seconds)
            m,a=1,b=2,c=3 v=2 \(seconds)
            m,a=1 long="\(String(repeating: "x", count: 100))" \(seconds)
            """
            let response = try await client.execute(uri: "/write?precision=s", method: .post, headers: auth, body: ByteBuffer(string: body))
            #expect(response.status == .badRequest)
            let error = try Self.json(response)
            #expect(error["line"] as? Int == 2)
            #expect(error["rejected"] as? Int == 2)
            #expect(try await Self.count(client, auth, measurement: "m", field: "v") == 1)
        }
        #expect(try metrics.expectCounter("flashback_ingest_lines_rejected_total", [("protocol", "http"), ("reason", "too_many_tags")]).totalValue == 1)
        #expect(try metrics.expectCounter("flashback_ingest_lines_rejected_total", [("protocol", "http"), ("reason", "line_too_long")]).totalValue == 1)
    }

    @Test func writersAreNodesOrOrganizationAdministrators() async throws {
        try await withHarness { harness, client in
            #expect(try await client.execute(uri: "/ping", method: .get).status == .noContent)
            #expect(try await client.execute(uri: "/write", method: .post, body: ByteBuffer(string: "m v=1")).status == .unauthorized)
            let user = try await harness.orgAuth("org-a", .user)
            #expect(try await client.execute(uri: "/write", method: .post, headers: user, body: ByteBuffer(string: "m v=1")).status == .forbidden)
            // Any member may read the organization's rollups.
            #expect(try await Self.count(client, user, measurement: "m", field: "v") == 0)
            #expect(try await client.execute(uri: "/api/v1/rollups?measurement=m&field=v", method: .get).status == .unauthorized)
            #expect(try await client.execute(uri: "/write", method: .post, headers: [.authorization: "Token fbn1.x.y"], body: ByteBuffer(string: "m v=1")).status == .unauthorized)
        }
    }
}

@Suite("Ingest admission")
struct IngestAdmissionTests {
    @Test func budgetIsEnforcedAndReleased() {
        let admission = IngestAdmission(limit: 100)
        #expect(admission.tryAcquire(60))
        #expect(!admission.tryAcquire(60))
        #expect(admission.tryAcquire(40))
        admission.release(60)
        admission.release(40)
        #expect(admission.bytesInFlight == 0)
        // A single request larger than the budget passes when nothing else is in flight.
        #expect(admission.tryAcquire(500))
        #expect(!admission.tryAcquire(1))
        admission.release(500)
    }

    @Test func saturatedWritePathAnswers503WithRetryAfter() async throws {
        let admission = IngestAdmission(limit: 1024)
        #expect(admission.tryAcquire(1024))  // another request holds the whole budget
        let metrics = TestMetrics()
        try await IngestRoutesTests().withHarness(admission: admission, metrics: metrics) { harness, client in
            let auth = try await harness.orgAuth("org-a")
            let response = try await client.execute(uri: "/write", method: .post, headers: auth, body: ByteBuffer(string: "m v=1"))
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers[.retryAfter] == "1")
            admission.release(1024)
            #expect(try await client.execute(uri: "/write", method: .post, headers: auth, body: ByteBuffer(string: "m v=1")).status == .noContent)
            #expect(admission.bytesInFlight == 0)
        }
        #expect(try metrics.expectCounter("flashback_ingest_requests_throttled_total", [("protocol", "http")]).totalValue == 1)
    }
}

extension HTTPFields {
    func merging(_ other: HTTPFields) -> HTTPFields {
        var copy = self
        for field in other { copy[field.name] = field.value }
        return copy
    }
}

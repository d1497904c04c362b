import Catalog
import CollectorAuth
import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Registry
import Stats
import Testing
import TimeSeries

/// The stats API against hand-computed expectations: the fixtures in `Fixtures/stats` go in
/// through the real ingest paths (signed `/status` reports, `/write` line protocol, a node's
/// `/stats/report`) at a fixed clock, and every endpoint's JSON is compared field by field.
///
/// The fleet: org-a with nodes n1 (AWS, eu-central-1) and n2 (GCP, us-east-1), buckets bA1
/// (workspace w1, S3) and bA2 (w2, GCS), repository r1 (w1, bA1), and the uncatalogued ids
/// b-free / r-free its own series carry; org-b with node n3, bucket bB1 and repository rB; a
/// public node p1 serving bA1 and bB1. Nodes register at 2026-03-09T06:00Z; "now" is
/// 2026-03-10T12:00Z.
@Suite("Stats routes")
struct StatsRoutesTests {
    static let registeredAt = Date(timeIntervalSince1970: 1_773_036_000)  // 2026-03-09T06:00:00Z
    static let now = Date(timeIntervalSince1970: 1_773_144_000)  // 2026-03-10T12:00:00Z
    static let day9: Int64 = 1_773_014_400  // 2026-03-09T00:00:00Z
    static let day10: Int64 = 1_773_100_800  // 2026-03-10T00:00:00Z

    struct Fleet {
        var client: any TestClientProtocol
        var tokens: TokenAuthority
        /// Placeholder (`bA1`, `n1`, …) → id.
        var ids: [String: String]
        var store: TimeSeriesStore

        func id(_ name: String) -> String { ids[name] ?? name }

        func get(_ uri: String, _ organization: String = "org-a", workspaces: [String] = []) async throws -> (HTTPResponse.Status, Any?) {
            let token = try await tokens.mint(for: CallerIdentity(organization: organization, user: "u", role: .user, workspaces: workspaces), lifetime: 600)
            let response = try await client.execute(uri: uri, method: .get, headers: [.authorization: "Bearer \(token)"])
            return (response.status, try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)))
        }

        func post(_ uri: String, _ body: String, _ organization: String = "org-a", workspaces: [String] = []) async throws -> (HTTPResponse.Status, Any?) {
            let token = try await tokens.mint(for: CallerIdentity(organization: organization, user: "u", role: .user, workspaces: workspaces), lifetime: 600)
            let response = try await client.execute(uri: uri, method: .post, headers: [.authorization: "Bearer \(token)", .contentType: "application/json"],
                                                    body: ByteBuffer(string: body))
            return (response.status, try? JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)))
        }
    }

    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures/stats/\(name)", withExtension: nil))
        return try String(contentsOf: url, encoding: .utf8)
    }

    static func substitute(_ text: String, _ ids: [String: String]) -> String {
        ids.reduce(text) { $0.replacingOccurrences(of: "{\($1.key)}", with: $1.value) }
    }

    /// Builds the fleet and feeds the fixtures, then runs `body`.
    func withFleet(maxRows: Int? = nil, _ body: @escaping @Sendable (Fleet) async throws -> Void) async throws {
        let directory = TemporaryDirectory(prefix: "stats")
        let clock = ManualClock(Self.registeredAt)
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let platform = try await OpenSSLSigner.generate(directory: directory.path)
        var registrySettings = RegistrySettings()
        registrySettings.platformPublicKeyPEM = try await platform.publicKeyPEM()
        let registry = try NodeRegistry(storage: storage, secrets: secrets, settings: registrySettings, clock: clock.source, logger: Logger(label: "test"))
        let catalog = try StorageCatalog(storage: storage, secrets: secrets, clock: clock.source, logger: Logger(label: "test"))
        let store = try TimeSeriesStore(database: storage.database, settings: .fleet)
        var statsSettings = StatsSettings()
        if let maxRows { statsSettings.maxRows = maxRows }
        let router = CollectorApplication.makeRouter(.init(
            storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: store,
            readiness: ServiceReadiness(), version: "test", clock: clock.source, statsSettings: statsSettings))
        try await Application(router: router).test(.router) { client in
            let harness = RegistryRoutesTests.Harness(tokens: tokens, registry: registry, directory: directory.path)
            let signers = ["org-a": try await RegistryRoutesTests.createKey(client, harness, org: "org-a"),
                           "org-b": try await RegistryRoutesTests.createKey(client, harness, org: "org-b"),
                           "": platform]
            // Nodes: name → (organization, ip, region, provider, url, version).
            let nodes: [(name: String, org: String, ip: String, region: String, provider: String, url: String, version: String)] = [
                ("n1", "org-a", "203.0.113.10", "eu-central-1", "AWS", "https://s3-eu-central-1-aws.flashback.tech", "1.2.0"),
                ("n2", "org-a", "203.0.113.11", "us-east-1", "GCP", "https://gcs-us-east-1-gcp.flashback.tech", "1.3.0"),
                ("n3", "org-b", "198.51.100.7", "eu-west-1", "AWS", "https://s3-eu-west-1-aws.flashback.tech", "1.2.0"),
                ("p1", "", "192.0.2.1", "ap-south-1", "AWS", "https://s3-ap-south-1-aws.flashback.tech", "2.0.0"),
            ]
            var ids: [String: String] = [:]
            var nodeTokens: [String: String] = [:]
            for (offset, node) in nodes.enumerated() {
                let stamp = Int64(clock.now.timeIntervalSince1970) - 100 + Int64(offset)
                let signer = try #require(signers[node.org])
                let signature = try await signer.signNodeMessage(ip: node.ip, region: node.region, timestamp: String(stamp))
                let organization = node.org.isEmpty ? "" : #","id_org":"\#(node.org)""#
                let body = #"{"provider":"\#(node.provider)","region":"\#(node.region)","ip":"\#(node.ip)","status":"running","version":"\#(node.version)","url":"\#(node.url)","timestamp":\#(stamp),"signature":"\#(signature)"\#(organization)}"#
                let response = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: body))
                #expect(response.status == .ok, "\(String(buffer: response.body))")
                let json = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
                ids[node.name] = try #require(json["nodeId"] as? String)
                nodeTokens[node.name] = try #require(json["nodeToken"] as? String)
            }
            // The catalog.
            func bucket(_ org: String, _ name: String, _ type: StorageType, _ workspace: String) async throws -> String {
                var draft = BucketDraft()
                (draft.name, draft.bucket, draft.storageType, draft.workspaceId) = (name, name, type, workspace)
                return try await catalog.createBucket(CatalogScope(organization: org, workspaces: []), draft, validation: nil).id
            }
            ids["bA1"] = try await bucket("org-a", "bucket-a1", .s3, "w1")
            ids["bA2"] = try await bucket("org-a", "bucket-a2", .gcs, "w2")
            ids["bB1"] = try await bucket("org-b", "bucket-b1", .s3, "wb")
            ids["r1"] = try await catalog.createRepository(CatalogScope(organization: "org-a", workspaces: []), RepositoryDraft(
                name: "r1", storageType: .s3, mode: .normal, workspaceId: "w1", buckets: [RepoBucketLink(folder: "data", master: false, bucketId: try #require(ids["bA1"]))],
                walletAddress: nil)).id
            ids["rB"] = try await catalog.createRepository(CatalogScope(organization: "org-b", workspaces: []), RepositoryDraft(
                name: "rB", storageType: .s3, mode: .normal, workspaceId: "wb", buckets: [RepoBucketLink(folder: "data", master: false, bucketId: try #require(ids["bB1"]))],
                walletAddress: nil)).id

            // Status reports, signed at "now".
            clock.advance(by: Self.now.timeIntervalSince(clock.now))
            let reports = try #require(try JSONSerialization.jsonObject(with: Data(Self.fixture("status-reports.json").utf8)) as? [[String: Any]])
            for (offset, report) in reports.enumerated() {
                let name = try #require(report["node"] as? String)
                let node = try #require(nodes.first { $0.name == name })
                let stamp = Int64(Self.now.timeIntervalSince1970) - 250 + Int64(offset)
                let signature = try await #require(signers[node.org]).signNodeMessage(ip: node.ip, region: node.region, timestamp: String(stamp))
                var body: [String: Any] = ["ip": node.ip, "region": node.region, "timestamp": stamp, "signature": signature,
                                           "buckets": try #require(report["buckets"] as? [[String: Any]]).map { bucket in
                                               var entry = bucket
                                               entry["unitId"] = Self.substitute(try #require(bucket["bucket"] as? String), ids)
                                               entry["bucket"] = nil
                                               return entry
                                           }]
                if !node.org.isEmpty { body["id_org"] = node.org }
                let response = try await client.execute(uri: "/status", method: .post, body: ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: body))))
                #expect(response.status == .ok, "\(String(buffer: response.body))")
            }
            // Traffic: line protocol by the organization (sent twice: a retry changes nothing),
            // and one record reported by node n1.
            let owner = try await tokens.mint(for: CallerIdentity(organization: "org-a", user: "o", role: .owner), lifetime: 600)
            for _ in 0..<2 {
                let written = try await client.execute(uri: "/write?precision=s", method: .post, headers: [.authorization: "Bearer \(owner)"],
                                                       body: ByteBuffer(string: Self.substitute(try Self.fixture("traffic.lp"), ids)))
                #expect(written.status == .noContent, "\(String(buffer: written.body))")
            }
            let reported = try await client.execute(uri: "/stats/report", method: .post, headers: [.authorization: "Bearer \(try #require(nodeTokens["n1"]))"],
                                                    body: ByteBuffer(string: Self.substitute(try Self.fixture("traffic-report.json"), ids)))
            #expect(reported.status == .ok, "\(String(buffer: reported.body))")
            try await body(Fleet(client: client, tokens: tokens, ids: ids, store: store))
        }
    }

    /// The rows of a `{success, data}` answer sorted by `key`.
    static func rows(_ json: Any?, _ field: String = "data", by key: ([String: Any]) -> String) throws -> [[String: Any]] {
        let object = try #require(json as? [String: Any])
        return try #require(object[field] as? [[String: Any]]).sorted { key($0) < key($1) }
    }

    static func pairKey(_ row: [String: Any]) -> String {
        "\(row["nodeId"] ?? "")|\(row["bucketId"] ?? "")|\(row["day"] ?? "")|\(row["minute"] ?? "")"
    }

    /// Field-by-field comparison of rows with the expectation (same keys, equal values).
    static func expectRows(_ actual: [[String: Any]], _ expected: [[String: Any]], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(actual.count == expected.count, "\(actual)", sourceLocation: sourceLocation)
        for (row, want) in zip(actual, expected) {
            #expect(Set(row.keys) == Set(want.keys), "\(row)", sourceLocation: sourceLocation)
            for (key, value) in want {
                #expect(NSDictionary(dictionary: [key: value]).isEqual(to: [key: row[key] as Any]), "\(key): \(row[key] ?? "missing") ≠ \(value)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func nodeMinuteStatsAreTheLatestMinutePerPair() async throws {
        try await withFleet { fleet in
            let (status, json) = try await fleet.get("/stats/nodes/minute")
            #expect(status == .ok)
            let n1 = fleet.id("n1"), n2 = fleet.id("n2"), p1 = fleet.id("p1"), bA1 = fleet.id("bA1"), bA2 = fleet.id("bA2")
            func row(_ node: String, _ bucket: String, _ status: String, _ updated: String, _ latency: Double?) -> [String: Any] {
                var row: [String: Any] = ["nodeId": node, "unitId": bucket, "bucketId": bucket, "nodeStatus": status, "lastUpdated": updated]
                if let latency { row["latency_ms"] = latency }
                return row
            }
            let expected = [
                row(n1, bA1, "ONLINE", "2026-03-10T11:58:00.000Z", 32),
                row(n1, "b-free", "ONLINE", "2026-03-10T11:58:00.000Z", 20),
                // Silent for 10 minutes: OFFLINE (after 3), not yet DISCONNECTED (after 15).
                row(n2, bA1, "OFFLINE", "2026-03-10T11:50:00.000Z", 70),
                // Reported DISCONNECTED, without a latency.
                row(n2, bA2, "DISCONNECTED", "2026-03-10T11:59:00.000Z", nil),
                // The public node, for the organization's catalog bucket only (not bB1).
                row(p1, bA1, "ONLINE", "2026-03-10T11:59:00.000Z", 15),
            ].sorted { Self.pairKey($0) < Self.pairKey($1) }
            Self.expectRows(try Self.rows(json, by: Self.pairKey), expected)

            // The client's list forms: one parameter, comma-joined, percent-encoded or not;
            // unitId as a synonym; `undefined` as absent.
            let (_, filtered) = try await fleet.get("/stats/nodes/minute?bucketId=\(bA2)%2Cb-free&workspaceId=undefined")
            Self.expectRows(try Self.rows(filtered, by: Self.pairKey), expected.filter { [bA2, "b-free"].contains($0["bucketId"] as? String ?? "") })
            let (_, legacy) = try await fleet.get("/stats/nodes/minute?unitId=\(bA2),b-free")
            #expect(try Self.rows(legacy, by: Self.pairKey).count == 2)

            // The extension: every minute of a range.
            let (_, minutes) = try await fleet.get("/stats/nodes/minute?bucketId=\(bA1)&startDate=2026-03-09T10%3A00%3A00.000Z&endDate=2026-03-09T10%3A59%3A00.000Z")
            Self.expectRows(try Self.rows(minutes, by: Self.pairKey), [
                ["nodeId": n1, "unitId": bA1, "bucketId": bA1, "minute": 1_773_050_400, "nodeStatus": "ONLINE", "lastUpdated": "2026-03-09T10:00:05.000Z", "latency_ms": 40],
                ["nodeId": n1, "unitId": bA1, "bucketId": bA1, "minute": 1_773_050_460, "nodeStatus": "ONLINE", "lastUpdated": "2026-03-09T10:01:05.000Z", "latency_ms": 50],
                ["nodeId": n1, "unitId": bA1, "bucketId": bA1, "minute": 1_773_050_520, "nodeStatus": "ONLINE", "lastUpdated": "2026-03-09T10:02:05.000Z", "latency_ms": 60],
                ["nodeId": n1, "unitId": bA1, "bucketId": bA1, "minute": 1_773_050_580, "nodeStatus": "OFFLINE", "lastUpdated": "2026-03-09T10:03:05.000Z", "latency_ms": 100],
            ])
            // Caps and order.
            let (tooLong, capped) = try await fleet.get("/stats/nodes/minute?startDate=2026-03-01&endDate=2026-03-10")
            #expect(tooLong == .badRequest)
            #expect(((capped as? [String: Any])?["message"] as? String)?.contains("7 days") == true)
            #expect(try await fleet.get("/stats/nodes/minute?startDate=2026-03-10&endDate=2026-03-09").0 == .badRequest)
        }
    }

    @Test func nodeDailyStatsComputeUptimeAndAverages() async throws {
        try await withFleet { fleet in
            let n1 = fleet.id("n1"), n2 = fleet.id("n2"), p1 = fleet.id("p1"), bA1 = fleet.id("bA1"), bA2 = fleet.id("bA2")
            let n1Node: [String: Any] = ["endpoint": "https://s3-eu-central-1-aws.flashback.tech", "region": "eu-central-1", "provider": "AWS", "version": "1.2.0"]
            let n2Node: [String: Any] = ["endpoint": "https://gcs-us-east-1-gcp.flashback.tech", "region": "us-east-1", "provider": "GCP", "version": "1.3.0"]
            let p1Node: [String: Any] = ["endpoint": "https://s3-ap-south-1-aws.flashback.tech", "region": "ap-south-1", "provider": "AWS", "version": "2.0.0"]
            func row(_ node: String, _ info: [String: Any], _ bucket: String, _ day: Int64, online: Double, latency: Double, storage: String, status: String) -> [String: Any] {
                ["nodeId": node, "unitId": bucket, "bucketId": bucket, "day": day, "online": online, "latency_ms": latency, "storageType": storage, "status": status]
                    .merging(info) { first, _ in first }
            }
            let expected = [
                // 3 ONLINE minutes of the 1,080 the node was registered on 2026-03-09 (from 06:00).
                row(n1, n1Node, bA1, Self.day9, online: 0.28, latency: 62.5, storage: "S3", status: "ONLINE"),
                // 2 of the 720 minutes of today up to noon.
                row(n1, n1Node, bA1, Self.day10, online: 0.28, latency: 31, storage: "S3", status: "ONLINE"),
                row(n1, n1Node, "b-free", Self.day10, online: 0.14, latency: 20, storage: "S3", status: "ONLINE"),
                row(n2, n2Node, bA1, Self.day10, online: 0.14, latency: 70, storage: "S3", status: "OFFLINE"),
                row(n2, n2Node, bA2, Self.day10, online: 0, latency: 0, storage: "GCS", status: "DISCONNECTED"),
                row(p1, p1Node, bA1, Self.day10, online: 0.14, latency: 15, storage: "S3", status: "ONLINE"),
            ].sorted { Self.pairKey($0) < Self.pairKey($1) }
            // ddmmyyyy as the client writes it: 09032026 loses its leading zero.
            let (status, json) = try await fleet.get("/stats/nodes/daily?startDate=9032026&endDate=10032026")
            #expect(status == .ok)
            Self.expectRows(try Self.rows(json, by: Self.pairKey), expected)
            let (_, one) = try await fleet.get("/stats/nodes/daily?startDate=10032026&endDate=10032026&bucketId=\(bA2)")
            Self.expectRows(try Self.rows(one, by: Self.pairKey), expected.filter { $0["bucketId"] as? String == bA2 })
            #expect(try await fleet.get("/stats/nodes/daily?startDate=32012026").0 == .badRequest)
            #expect(try await fleet.get("/stats/nodes/daily?startDate=1012020&endDate=10032026").0 == .badRequest)
        }
    }

    @Test func bucketNodeStatsAndStatus() async throws {
        try await withFleet { fleet in
            let bA1 = fleet.id("bA1")
            let (status, json) = try await fleet.post("/bucket/\(bA1)/stats", #"{"day":"2026-03-10T00:00:00.000Z"}"#)
            #expect(status == .ok)
            let byIP: ([String: Any]) -> String = { "\($0["ip"] ?? "")" }
            let n1 = fleet.id("n1"), n2 = fleet.id("n2"), p1 = fleet.id("p1")
            Self.expectRows(try Self.rows(json, "nodeStats", by: byIP), [
                ["nodeId": p1, "ip": "192.0.2.1", "host": "*-ap-south-1-aws.flashback.tech", "perc_uptime": 0.14, "avg_latency_ms": 15, "version": "2.0.0",
                 "node_status": "ONLINE", "last_updated": "2026-03-10T11:59:00.000Z", "last_latency_ms": 15],
                ["nodeId": n1, "ip": "203.0.113.10", "host": "*-eu-central-1-aws.flashback.tech", "perc_uptime": 0.28, "avg_latency_ms": 31, "version": "1.2.0",
                 "node_status": "ONLINE", "last_updated": "2026-03-10T11:58:00.000Z", "last_latency_ms": 32],
                ["nodeId": n2, "ip": "203.0.113.11", "host": "*-us-east-1-gcp.flashback.tech", "perc_uptime": 0.14, "avg_latency_ms": 70, "version": "1.3.0",
                 "node_status": "OFFLINE", "last_updated": "2026-03-10T11:50:00.000Z", "last_latency_ms": 70],
            ])
            // The day before: only n1 served the bucket; the status and last report are today's.
            let (_, before) = try await fleet.post("/bucket/\(bA1)/stats", #"{"day":"2026-03-09"}"#)
            Self.expectRows(try Self.rows(before, "nodeStats", by: byIP), [
                ["nodeId": n1, "ip": "203.0.113.10", "host": "*-eu-central-1-aws.flashback.tech", "perc_uptime": 0.28, "avg_latency_ms": 62.5, "version": "1.2.0",
                 "node_status": "ONLINE", "last_updated": "2026-03-10T11:58:00.000Z", "last_latency_ms": 32],
            ])
            #expect(try await fleet.post("/bucket/\(bA1)/stats", #"{"day":"yesterday"}"#).0 == .badRequest)
            #expect(try await fleet.post("/bucket/\(bA1)/stats", #"{}"#).0 == .badRequest)

            let (statusCode, nodes) = try await fleet.get("/bucket/\(bA1)/status")
            #expect(statusCode == .ok)
            let object = try #require(nodes as? [String: Any])
            #expect(object["bucketId"] as? String == bA1)
            #expect(object["success"] == nil)
            Self.expectRows(try Self.rows(nodes, "nodeStatus", by: byIP), [
                ["nodeId": p1, "ip": "192.0.2.1", "region": "ap-south-1", "version": "2.0.0", "status": "ONLINE", "latency_ms": 15, "latencyMs": 15, "lastUpdated": "2026-03-10T11:59:00.000Z"],
                ["nodeId": n1, "ip": "203.0.113.10", "region": "eu-central-1", "version": "1.2.0", "status": "ONLINE", "latency_ms": 32, "latencyMs": 32, "lastUpdated": "2026-03-10T11:58:00.000Z"],
                ["nodeId": n2, "ip": "203.0.113.11", "region": "us-east-1", "version": "1.3.0", "status": "OFFLINE", "latency_ms": 70, "latencyMs": 70, "lastUpdated": "2026-03-10T11:50:00.000Z"],
            ])
            // The legacy twin.
            #expect(try await fleet.get("/unit/\(bA1)/status").0 == .ok)
        }
    }

    @Test func trafficSeriesAndTotals() async throws {
        try await withFleet { fleet in
            let bA1 = fleet.id("bA1"), bA2 = fleet.id("bA2"), r1 = fleet.id("r1")
            let s3 = "s3-eu-central-1-aws.flashback.tech", gcs = "gcs-us-east-1-gcp.flashback.tech"
            func row(_ start: Int64, _ repo: String, _ bucket: String, _ host: String, _ up: Int, _ down: Int, _ size: Int, _ latency: Double) -> [String: Any] {
                ["timestamp": start, "repoId": repo, "unitId": bucket, "bucketId": bucket, "host": host, "upl_bytes": up, "dwl_bytes": down, "size_change": size, "latency_ms": latency]
            }
            let key: ([String: Any]) -> String = { "\($0["timestamp"] ?? "")|\($0["repoId"] ?? "")|\($0["bucketId"] ?? "")|\($0["host"] ?? "")" }
            let daily = [
                row(Self.day9, r1, bA1, s3, 1500, 200, 700, 50),
                // The organization's 300 at 11:00:00 and node n1's 100 at 11:00:30 add up.
                row(Self.day10, r1, bA1, s3, 400, 60, 400, 35),
                row(Self.day10, "", bA2, gcs, 7, 9, 7, 0),
                row(Self.day10, "r-free", "b-free", s3, 11, 13, -2, 0),
            ].sorted { key($0) < key($1) }
            let (status, json) = try await fleet.get("/stats/daily?startDate=2026-02-01&endDate=2026-03-10")
            #expect(status == .ok)
            Self.expectRows(try Self.rows(json, by: key), daily)
            // The client's date-time form, percent-encoded.
            let (_, minute) = try await fleet.get("/stats/minute?startDate=2026-03-10T11%3A00%3A00.000Z&endDate=2026-03-10T11%3A01%3A00.000Z")
            Self.expectRows(try Self.rows(minute, by: key), [
                row(1_773_140_400, r1, bA1, s3, 400, 60, 400, 35),
                row(1_773_140_400, "", bA2, gcs, 7, 9, 7, 0),
                row(1_773_140_460, "r-free", "b-free", s3, 11, 13, -2, 0),
            ].sorted { key($0) < key($1) })
            let (_, byHost) = try await fleet.get("/stats/daily?startDate=2026-03-01&endDate=2026-03-10&hosts=\(gcs)")
            Self.expectRows(try Self.rows(byHost, by: key), [row(Self.day10, "", bA2, gcs, 7, 9, 7, 0)])
            let (_, byRepo) = try await fleet.get("/stats/daily?startDate=2026-03-01&endDate=2026-03-10&repoId=\(r1)")
            Self.expectRows(try Self.rows(byRepo, by: key), daily.filter { $0["repoId"] as? String == r1 })
            #expect(try await fleet.get("/stats/daily?startDate=2026-03-10&endDate=2026-03-01").0 == .badRequest)
            #expect(try await fleet.get("/stats/daily?startDate=March").0 == .badRequest)

            // All-time totals: catalog buckets first, then ids only the series carry.
            let (_, buckets) = try await fleet.get("/bucket/stats")
            let totals = try #require((buckets as? [String: Any])?["stats"] as? [[String: Any]])
            // Catalog buckets (both created at the same instant, so ordered by id), then b-free.
            #expect(totals.last?["bucketId"] as? String == "b-free")
            let byBucket: ([String: Any]) -> String = { "\($0["bucketId"] ?? "")" }
            Self.expectRows(totals.sorted { byBucket($0) < byBucket($1) }, [
                // requests 3 + 2 + 1, plus n1's record without a request count (1).
                ["bucketId": bA1, "totalCount": "7", "totalUploadBytes": "1900", "totalDownloadBytes": "260", "totalSizeChange": "1100"],
                ["bucketId": bA2, "totalCount": "1", "totalUploadBytes": "7", "totalDownloadBytes": "9", "totalSizeChange": "7"],
                ["bucketId": "b-free", "totalCount": "4", "totalUploadBytes": "11", "totalDownloadBytes": "13", "totalSizeChange": "-2"],
            ].sorted { byBucket($0) < byBucket($1) })
            let (_, legacy) = try await fleet.get("/unit/stats?unitId=\(bA2)")
            Self.expectRows(try #require((legacy as? [String: Any])?["stats"] as? [[String: Any]]), [
                ["bucketId": bA2, "unitId": bA2, "totalCount": "1", "totalUploadBytes": "7", "totalDownloadBytes": "9", "totalSizeChange": "7"],
            ])
            let (_, repos) = try await fleet.get("/repo/stats")
            Self.expectRows(try #require((repos as? [String: Any])?["stats"] as? [[String: Any]]), [
                ["repoId": r1, "totalUploadBytes": "1900", "totalDownloadBytes": "260", "totalSizeChange": "1100"],
                ["repoId": "r-free", "totalUploadBytes": "11", "totalDownloadBytes": "13", "totalSizeChange": "-2"],
            ])
        }
    }

    /// Every endpoint, for org-a's owner, an org-a user limited to workspace w1, and org-b:
    /// what each sees, and 404 (not an empty 200) for ids it may not see.
    @Test func organizationAndWorkspaceMatrix() async throws {
        try await withFleet { fleet in
            let bA1 = fleet.id("bA1"), bA2 = fleet.id("bA2"), bB1 = fleet.id("bB1"), r1 = fleet.id("r1"), rB = fleet.id("rB")
            let n3 = fleet.id("n3"), p1 = fleet.id("p1")
            func buckets(_ json: Any?, _ field: String = "data") -> Set<String> {
                Set(((json as? [String: Any])?[field] as? [[String: Any]] ?? []).compactMap { $0["bucketId"] as? String })
            }
            // Workspace w1 sees bA1 only: not bA2 (w2), not the uncatalogued b-free.
            let (_, w1Minute) = try await fleet.get("/stats/nodes/minute", workspaces: ["w1"])
            #expect(buckets(w1Minute) == [bA1])
            let (_, w1Daily) = try await fleet.get("/stats/nodes/daily?startDate=9032026&endDate=10032026", workspaces: ["w1"])
            #expect(buckets(w1Daily) == [bA1])
            let (_, w1Traffic) = try await fleet.get("/stats/daily?startDate=2026-03-01&endDate=2026-03-10", workspaces: ["w1"])
            #expect(buckets(w1Traffic) == [bA1])
            let (_, w1Totals) = try await fleet.get("/bucket/stats", workspaces: ["w1"])
            #expect(buckets(w1Totals, "stats") == [bA1])
            let (_, w1Repos) = try await fleet.get("/repo/stats", workspaces: ["w1"])
            #expect(((w1Repos as? [String: Any])?["stats"] as? [[String: Any]])?.compactMap { $0["repoId"] as? String } == [r1])

            // org-b: its own node n3 and the public node p1 on bB1; org-a's line naming bB1 is
            // org-a's series and stays invisible to both.
            let (_, bMinute) = try await fleet.get("/stats/nodes/minute", "org-b")
            #expect(buckets(bMinute) == [bB1])
            #expect(Set(((bMinute as? [String: Any])?["data"] as? [[String: Any]] ?? []).compactMap { $0["nodeId"] as? String }) == [n3, p1])
            let (_, bTraffic) = try await fleet.get("/stats/daily?startDate=2026-03-01&endDate=2026-03-10", "org-b")
            #expect(buckets(bTraffic).isEmpty)
            let (_, aTraffic) = try await fleet.get("/stats/daily?startDate=2026-03-01&endDate=2026-03-10")
            #expect(!buckets(aTraffic).contains(bB1))

            // Foreign, out-of-workspace and unknown ids are 404 on every endpoint.
            let denied: [(uri: String, org: String, workspaces: [String])] = [
                ("/stats/nodes/minute?bucketId=\(bB1)", "org-a", []),
                ("/stats/nodes/minute?bucketId=\(bA2)", "org-a", ["w1"]),
                ("/stats/nodes/minute?bucketId=b-free", "org-a", ["w1"]),
                ("/stats/nodes/minute?bucketId=no-such-bucket", "org-a", []),
                ("/stats/nodes/daily?bucketId=\(bA1)", "org-b", []),
                ("/stats/daily?bucketId=\(bA1)", "org-b", []),
                ("/stats/minute?repoId=\(rB)", "org-a", []),
                ("/stats/daily?repoId=\(r1)", "org-b", []),
                ("/bucket/stats?bucketId=\(bA1)", "org-b", []),
                ("/unit/stats?unitId=\(bA2)", "org-a", ["w1"]),
                ("/repo/stats?repoId=\(rB)", "org-a", []),
                ("/repo/stats?repoId=r-free", "org-b", []),
                ("/bucket/\(bA1)/status", "org-b", []),
                ("/bucket/\(bB1)/status", "org-a", []),
                ("/bucket/no-such-bucket/status", "org-a", []),
            ]
            for request in denied {
                let (status, json) = try await fleet.get(request.uri, request.org, workspaces: request.workspaces)
                #expect(status == .notFound, "\(request.uri) as \(request.org) \(request.workspaces)")
                #expect((json as? [String: Any])?["success"] as? Bool == false)
            }
            #expect(try await fleet.post("/bucket/\(bA1)/stats", #"{"day":"2026-03-10"}"#, "org-b").0 == .notFound)
            #expect(try await fleet.post("/bucket/\(bA2)/stats", #"{"day":"2026-03-10"}"#, workspaces: ["w1"]).0 == .notFound)
            // Without a token: 401.
            let anonymous = try await fleet.client.execute(uri: "/stats/nodes/minute", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }

    /// An answer that could exceed `--stats-max-rows` (pairs or groups × periods) is refused
    /// before anything is read; a smaller one streams out complete.
    @Test func answersOverTheRowCapAreRefusedUpFront() async throws {
        try await withFleet(maxRows: 40) { fleet in
            // 5 pairs × 61 minutes.
            let (minutes, minuteBody) = try await fleet.get("/stats/nodes/minute?startDate=2026-03-10T11%3A00%3A00.000Z&endDate=2026-03-10T12%3A00%3A00.000Z")
            #expect(minutes == .badRequest)
            #expect(((minuteBody as? [String: Any])?["message"] as? String)?.contains("40 rows") == true)
            // 5 pairs × 7 days (the default range) is under the cap.
            #expect(try await fleet.get("/stats/nodes/daily").0 == .ok)
            #expect(try await fleet.get("/stats/nodes/daily?startDate=1032026&endDate=10032026").0 == .badRequest)
            // 4 traffic groups × 30 days.
            #expect(try await fleet.get("/stats/daily").0 == .badRequest)
            let (ok, json) = try await fleet.get("/stats/daily?startDate=2026-03-09&endDate=2026-03-10")
            #expect(ok == .ok)
            #expect(((json as? [String: Any])?["data"] as? [[String: Any]])?.count == 4)
        }
    }
}

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
import NIOCore
import Registry
import Testing
import TimeSeries

/// `POST /status` (signed node status report) and `POST /stats/report` (bucket traffic).
@Suite("Node reports")
struct NodeReportRoutesTests {
    let directory = TemporaryDirectory(prefix: "reports")

    @Test func statusReportsAndTrafficReportsAreStored() async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let registry = try NodeRegistry(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let store = try TimeSeriesStore(database: storage.database)
        let router = CollectorApplication.makeRouter(.init(
            storage: storage, tokens: tokens, registry: registry, catalog: try StorageCatalog(storage: storage, secrets: secrets, logger: Logger(label: "test")),
            timeSeries: store, readiness: ServiceReadiness(), version: "test"))
        let directory = self.directory.path
        try await Application(router: router).test(.router) { client in
            let signer = try await RegistryRoutesTests.createKey(client, RegistryRoutesTests.Harness(tokens: tokens, registry: registry, directory: directory), org: "org-a")
            let registered = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await RegistryRoutesTests.registerBody(signer)))
            let json = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: registered.body).utf8)) as? [String: Any])
            let nodeID = try #require(json["nodeId"] as? String)
            let nodeToken = try #require(json["nodeToken"] as? String)

            let stamp = Int64(Date().timeIntervalSince1970) + 1
            let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: String(stamp))
            let created = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            let report = #"{"ip":"203.0.113.10","region":"eu-central-1","timestamp":\#(stamp),"signature":"\#(signature)","id_org":"org-a","buckets":[{"unitId":"b-1","status":"ONLINE","latencyMs":38,"createdAt":"\#(created)"},{"unitId":"b-2","status":"OFFLINE","latency_ms":90,"createdAt":"\#(created)"}]}"#
            let accepted = try await client.execute(uri: "/status", method: .post, body: ByteBuffer(string: report))
            #expect(accepted.status == .ok, "\(String(buffer: accepted.body))")
            // The same signed report again is a replay.
            let replayed = try await client.execute(uri: "/node/status", method: .post, body: ByteBuffer(string: report))
            #expect(replayed.status == .badRequest)
            let series = store.index.series(organization: "org-a", measurement: "node_status")
            #expect(series.count == 2)
            #expect(series.allSatisfy { $0.key.tags.contains { $0.key == "node" && $0.value == nodeID } })
            #expect(registry.node(id: nodeID)?.latencyMs == 64)
            let status = try #require(store.index.existingFieldID("status"))
            let online = try series.map { try store.rollups(series: $0.id, field: status, start: stamp - 3600, end: stamp + 3600, perDay: false).first?.rollup.onlineCount ?? 9 }
            #expect(online.sorted() == [0, 1])

            let traffic = #"[{"timestamp":\#(stamp),"repoId":"r-1","unitId":"b-1","upl_bytes":1000,"dwl_bytes":200,"size_change":-50,"latency_ms":41,"host":"s3-eu"},{"timestamp":\#(stamp + 60),"repoId":"r-1","bucketId":"b-1","upl_bytes":10,"host":"s3-eu"}]"#
            let stored = try await client.execute(uri: "/stats/report", method: .post, headers: [.authorization: "Bearer \(nodeToken)"], body: ByteBuffer(string: traffic))
            #expect(stored.status == .ok, "\(String(buffer: stored.body))")
            let upload = try #require(store.index.existingFieldID("upl_bytes"))
            let trafficSeries = try #require(store.index.series(organization: "org-a", measurement: "bucket_traffic").first)
            let day = try store.rollups(series: trafficSeries.id, field: upload, start: stamp - 86_400, end: stamp + 86_400, perDay: true)
            #expect(day.first?.rollup.sum == 1010)
            #expect(try await client.execute(uri: "/stats/report", method: .post, body: ByteBuffer(string: traffic)).status == .unauthorized)
            #expect(try await client.execute(uri: "/stats/report", method: .post, headers: [.authorization: "Bearer \(nodeToken)"], body: ByteBuffer(string: "[{\"unitId\":\"b\"}]")).status == .badRequest)
        }
    }
}

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
import RocksDB
import Testing
import TimeSeries

/// The requests that stopped the whole process with an arithmetic-overflow trap (issue 12),
/// replayed in-process: before the fix each of these crashed the test runner itself. Every one
/// must now answer a 4xx in the Flashback error shape, naming what was wrong, or a 2xx.
@Suite("Hostile input: regressions")
struct HostileInputRegressionTests {
    /// The `/api/v1/rollups` range, `/stats/daily|minute` and `/stats/nodes/*` dates, and
    /// `POST /bucket/{id}/stats` days that trapped (end + 59, seconds × 10⁹, day arithmetic).
    @Test func extremeRangesAndDatesAnswer400() async throws {
        try await StatsRoutesTests().withFleet { fleet in
            let owner = try await fleet.tokens.mint(for: CallerIdentity(organization: "org-a", user: "o", role: .owner), lifetime: 600)
            // Rollups: the trapping request of the report, and its neighbours.
            for (query, parameter) in [("start=0&end=9223372036854775807", "end"), ("start=-9223372036854775808&end=0", "start"),
                                       ("start=0&end=9214646400", "end"), ("start=9214646399&end=99999999999", "end"),
                                       ("start=1e309&end=2", "start"), ("start=0x10&end=20", "start"), ("start=1%00&end=10", "start"),
                                       ("start=18446744073709551616&end=1", "start"), ("start=NaN&end=1", "start"), ("start=-0&end=-0", "end")] {
                let response = try await fleet.client.execute(uri: "/api/v1/rollups?measurement=bucket_traffic&field=upl_bytes&\(query)", method: .get,
                                                              headers: [.authorization: "Bearer \(owner)"])
                try Self.expectJSONError(response, .badRequest, mentioning: parameter, query)
            }
            // The whole supported range is still a valid question.
            let whole = try await fleet.client.execute(uri: "/api/v1/rollups?measurement=bucket_traffic&field=upl_bytes&start=0&end=9214646399", method: .get,
                                                       headers: [.authorization: "Bearer \(owner)"])
            #expect(whole.status == .ok, "\(String(buffer: whole.body))")

            // Stats dates, as a read-only USER.
            let bucket = fleet.id("bA1")
            for (path, parameter) in [("/stats/daily?bucketId=\(bucket)&endDate=9999-12-31", "endDate"),
                                      ("/stats/minute?bucketId=\(bucket)&endDate=9999-12-31", "endDate"),
                                      ("/stats/daily?bucketId=\(bucket)&startDate=2262-04-11T23:47:17Z", "startDate"),
                                      ("/stats/minute?bucketId=\(bucket)&startDate=3000-01-01T00:00:00.000Z&endDate=3000-01-02T00:00:00.000Z", "endDate"),
                                      ("/stats/daily?bucketId=\(bucket)&endDate=2262-01-01T00:00:00Z", "endDate"),
                                      ("/stats/nodes/minute?bucketId=\(bucket)&endDate=9999-12-31", "endDate"),
                                      ("/stats/nodes/daily?bucketId=\(bucket)&endDate=31129999", "endDate"),
                                      ("/stats/nodes/daily?bucketId=\(bucket)&startDate=9999-12-31", "startDate"),
                                      ("/stats/nodes/daily?bucketId=\(bucket)&endDate=+99999-01-01", "endDate")] {
                let (status, json) = try await fleet.get(path)
                #expect(status == .badRequest, "\(path): \(status) \(String(describing: json))")
                let object = json as? [String: Any]
                #expect(object?["success"] as? Bool == false && (object?["message"] as? String)?.contains(parameter) == true,
                        "\(path): \(String(describing: json))")
            }
            // The last supported day is a valid (capped) question, not a trap.
            let (lastDay, lastJSON) = try await fleet.get("/stats/daily?bucketId=\(bucket)&startDate=2261-12-01&endDate=2261-12-31")
            #expect(lastDay == .ok, "\(String(describing: lastJSON))")
            let (lastNodes, lastNodesJSON) = try await fleet.get("/stats/nodes/daily?bucketId=\(bucket)&startDate=01122261&endDate=31122261")
            #expect(lastNodes == .ok, "\(String(describing: lastNodesJSON))")
            for day in ["9999-12-31T00:00:00.000Z", "2262-04-12", "0000-01-01"] {
                let (status, json) = try await fleet.post("/bucket/\(bucket)/stats", #"{"day":"\#(day)"}"#)
                #expect(status == .badRequest, "\(day): \(String(describing: json))")
                #expect(((json as? [String: Any])?["message"] as? String)?.contains("day") == true)
            }
        }
    }

    /// A correctly signed `/status` whose `createdAt` lies in year 3000 (createdAt → nanoseconds
    /// trapped), and signed messages with extreme timestamps (the skew message trapped).
    @Test func extremeTimesInSignedMessagesAnswer400() async throws {
        let directory = TemporaryDirectory(prefix: "hostile-status")
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let registry = try NodeRegistry(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let store = try TimeSeriesStore(database: storage.database)
        let router = CollectorApplication.makeRouter(.init(
            storage: storage, tokens: tokens, registry: registry, catalog: try StorageCatalog(storage: storage, secrets: secrets, logger: Logger(label: "test")),
            timeSeries: store, readiness: ServiceReadiness(), version: "test"))
        try await Application(router: router).test(.router) { client in
            let signer = try await RegistryRoutesTests.createKey(client, RegistryRoutesTests.Harness(tokens: tokens, registry: registry, directory: directory.path), org: "org-a")
            let registered = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await RegistryRoutesTests.registerBody(signer)))
            #expect(registered.status == .ok, "\(String(buffer: registered.body))")
            let nodeToken = try #require((try JSONSerialization.jsonObject(with: Data(String(buffer: registered.body).utf8)) as? [String: Any])?["nodeToken"] as? String)

            var stamp = Int64(Date().timeIntervalSince1970) + 1
            for createdAt in ["3000-01-01T00:00:00.000Z", "2262-04-11T23:47:17Z", "9999-12-31T23:59:59Z", "1677-09-21T00:12:43Z", "0001-01-01T00:00:00Z"] {
                stamp += 1
                let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: String(stamp))
                let report = #"{"ip":"203.0.113.10","region":"eu-central-1","timestamp":\#(stamp),"signature":"\#(signature)","id_org":"org-a","buckets":[{"unitId":"b-1","status":"ONLINE","latencyMs":1e300,"createdAt":"\#(createdAt)"}]}"#
                let response = try await client.execute(uri: "/status", method: .post, body: ByteBuffer(string: report))
                try Self.expectJSONError(response, .badRequest, mentioning: "buckets[0].createdAt")
            }
            // Timestamps no clock is near: refused by the window, with a message that does not trap.
            for timestamp in ["9223372036854775807", "-9223372036854775808", "\"99999-01-01T00:00:00Z\"", "\"+99999-01-01T00:00:00Z\"", "\"-9223372036854775808\"", "1e15", "-1e15"] {
                let body = #"{"ip":"203.0.113.10","region":"eu-central-1","timestamp":\#(timestamp),"signature":"c2lnbmF0dXJl","id_org":"org-a","provider":"AWS","version":"1","status":"running"}"#
                for path in ["/register", "/unregister", "/status"] {
                    let withBuckets = path == "/status" ? body.dropLast() + #","buckets":[]}"# : Substring(body)
                    let response = try await client.execute(uri: path, method: .post, body: ByteBuffer(string: String(withBuckets)))
                    try Self.expectJSONError(response, .badRequest, mentioning: "timestamp")
                }
            }
            // Traffic records: a timestamp whose nanoseconds do not fit, and huge values.
            for record in [#"{"timestamp":9223372036854775807,"unitId":"b","upl_bytes":1}"#, #"{"timestamp":9214646400,"unitId":"b","upl_bytes":1}"#,
                           #"{"timestamp":-1,"unitId":"b","upl_bytes":1}"#] {
                let response = try await client.execute(uri: "/stats/report", method: .post, headers: [.authorization: "Bearer \(nodeToken)"],
                                                        body: ByteBuffer(string: "[\(record)]"))
                try Self.expectJSONError(response, .badRequest, mentioning: "timestamp")
            }
            let huge = try await client.execute(uri: "/stats/report", method: .post, headers: [.authorization: "Bearer \(nodeToken)"],
                                                body: ByteBuffer(string: #"[{"unitId":"b","upl_bytes":1.7e308,"dwl_bytes":-1.7e308,"latency_ms":1e300}]"#))
            #expect(huge.status == .ok, "\(String(buffer: huge.body))")
        }
    }

    /// One organization at its field-name limit cannot add a name; another still can, and the
    /// refusal is a counted partial write, not a failed request (issue 12, item 6).
    @Test func oneOrganizationAtItsFieldLimitLeavesOthersWriting() async throws {
        let directory = TemporaryDirectory(prefix: "field-limit")
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        var settings = TimeSeriesSettings()
        settings.maxFieldsPerOrganization = 3
        let store = try TimeSeriesStore(database: storage.database, settings: settings)
        let now = Date()
        let nanos = Int64(now.timeIntervalSince1970) * 1_000_000_000
        func point(_ organization: String, _ fields: [String]) -> SeriesPoint {
            SeriesPoint(organization: organization, measurement: "m", tags: [], fields: fields.map { (name: $0, value: 1) }, timestamp: nanos)
        }
        let filled = try store.write([point("greedy", ["a", "b", "c"])], now: now, sync: false)
        #expect(filled.stored == 3 && filled.rejectedTotal == 0)
        let refused = try store.write([point("greedy", ["d"]), point("greedy", ["a"])], now: now, sync: false)
        #expect(refused.rejected[.fieldLimit] == 1 && refused.stored == 1, "\(refused)")
        #expect(refused.firstRejection?.contains("greedy") == true)
        // Another organization: new names, including one the greedy tenant already uses.
        let other = try store.write([point("quiet", ["a", "x", "y"])], now: now, sync: false)
        #expect(other.stored == 3 && other.rejectedTotal == 0, "\(other)")
        #expect(store.index.fieldCount(organization: "greedy") == 3)
        #expect(store.index.fieldCount(organization: "quiet") == 3)
        // The budget is kept across a restart.
        let reopened = try SeriesIndex(database: storage.database, family: try storage.database.columnFamily("series"),
                                       maxFieldsPerOrganization: 3)
        #expect(reopened.fieldCount(organization: "greedy") == 3)
        #expect(throws: SeriesLimitError.fieldLimitPerOrganization(organization: "greedy", limit: 3)) {
            try reopened.fieldID("e", organization: "greedy")
        }
    }

    /// 4xx with `{success:false, message}` whose message names `parameter`.
    static func expectJSONError(_ response: TestResponse, _ status: HTTPResponse.Status, mentioning parameter: String, _ context: String = "",
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        let text = context + " → " + String(buffer: response.body)
        #expect(response.status == status, "\(text)", sourceLocation: sourceLocation)
        let object = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
        #expect(object?["success"] as? Bool == false, "\(text)", sourceLocation: sourceLocation)
        #expect((object?["message"] as? String)?.contains(parameter) == true, "\(parameter) not named in \(text)", sourceLocation: sourceLocation)
    }
}

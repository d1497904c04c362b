import CollectorStore
import CollectorTesting
import Foundation
import Testing

/// Cluster mode's control plane: two `serve` processes (replicas A and B) on one throwaway
/// PostgreSQL, sharing the master key and the JWT secret as a deployment would.
@Suite("cluster mode: two replicas on one PostgreSQL")
struct ClusterModeTests {
    let directory = TemporaryDirectory(prefix: "cluster")
    let organization = "org-c"
    let ip = "203.0.113.40"
    let region = "eu-west-1"

    /// Starts a replica on `database` with the shared secrets of ``directory``.
    func replica(_ name: String, _ database: PostgresServer, extra: [String] = []) throws -> CollectorProcess {
        try CollectorProcess.replica(name, in: directory, databaseURL: database.url, arguments: [
            "--registry-refresh-interval", "3600", "--validate-allow-private",
        ] + (extra.isEmpty ? ["--registry-timeout", "30"] : extra))
    }

    /// Registers the node through `collector` with a fresh signature; returns the request body
    /// and the node token.
    func register(_ collector: CollectorProcess, _ signer: OpenSSLSigner, at seconds: Int64 = Int64(Date().timeIntervalSince1970)) async throws
        -> (body: String, token: String) {
        let stamp = String(seconds)
        let body = """
            {"provider":"AWS","region":"\(region)","ip":"\(ip)","status":"running","version":"0.0.28","timestamp":\(stamp),"signature":"\(try await signer.signNodeMessage(ip: ip, region: region, timestamp: stamp))","id_org":"\(organization)"}
            """
        let response = try await collector.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: body)
        #expect(response.status == 200, "\(response.body)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])
        return (body, try #require(json["nodeToken"] as? String))
    }

    static func json(_ body: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
    }

    @Test func replicasShareKeysNodesBucketsAndRevocations() async throws {
        let database = try await PostgresServer()
        let moto = try await MotoServer(logDirectory: directory.path)
        let a = try replica("a", database)
        defer { a.send(SIGKILL) }
        let b = try replica("b", database)
        defer { b.send(SIGKILL) }
        #expect(await a.waitFor(path: "/-/ready", status: 200))
        #expect(await b.waitFor(path: "/-/ready", status: 200))
        let auth = try await a.authorization(organization: organization)

        // A node registers through A and writes with its token through B.
        let created = try await a.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(created.status == 200)
        let signer = try OpenSSLSigner(privateKeyPEM: created.body, directory: directory.path)
        let (body, token) = try await register(a, signer)
        let write = try await b.get("/write", headers: [("Authorization", "Bearer \(token)")], method: "POST",
                                    body: "node_stats,bucket=bkt-1 bytes_in=10i \(Int64(Date().timeIntervalSince1970) * 1_000_000_000)\n")
        #expect(write.status == 204, "B knows the token A issued: \(write.body)")
        // A's accepted signature replayed to B is refused there.
        let replay = try await b.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: body)
        #expect(replay.status == 400 && replay.body.contains("replay"), "\(replay.body)")
        let keysOnB = try await b.get("/organization/\(organization)/key", headers: auth)
        #expect(keysOnB.body.contains(#""nodeId":"\#(ip)""#), "\(keysOnB.body)")

        // A bucket created on A is listed and validated on B.
        let bucketBody = #"{"name":"archive","bucket":"\#(moto.bucket)","storageType":"S3","key":"\#(moto.accessKeyID)","secret":"\#(moto.secretAccessKey)","endpoint":"\#(moto.endpoint)","region":"us-east-1","workspaceId":"ws-1"}"#
        let bucket = try await a.get("/bucket", headers: auth + [("Content-Type", "application/json")], method: "POST", body: bucketBody)
        #expect(bucket.status == 200, "\(bucket.body)")
        let bucketID = try #require(try Self.json(bucket.body)["bucketId"] as? String)
        #expect(try await b.get("/bucket", headers: auth).body.contains(bucketID))
        let validated = try await b.get("/bucket/\(bucketID)/validate", headers: auth + [("Content-Type", "application/json")], method: "POST", body: "{}")
        #expect(validated.status == 200 && validated.body.contains(#""status":"ONLINE""#), "\(validated.body)")

        // The same bucket name created on both at once: exactly one wins.
        let raceBody = #"{"name":"contested","bucket":"contested","storageType":"S3","workspaceId":"ws-1"}"#
        async let onA = a.get("/bucket", headers: auth + [("Content-Type", "application/json")], method: "POST", body: raceBody)
        async let onB = b.get("/bucket", headers: auth + [("Content-Type", "application/json")], method: "POST", body: raceBody)
        let outcomes = try await [onA, onB]
        #expect(outcomes.map(\.status).sorted() == [200, 400], "\(outcomes.map(\.body))")
        #expect(outcomes.contains { $0.body.contains("already exists") })
        let listed = try await a.get("/bucket", headers: auth)
        #expect(listed.body.components(separatedBy: #""name":"contested""#).count == 2, "one bucket named contested: \(listed.body)")

        // A repo key created on A authorizes on B; revoked on A, B refuses it shortly after.
        let repo = try await a.get("/repo", headers: auth + [("Content-Type", "application/json")], method: "POST",
                                   body: #"{"name":"gallery","storageType":"S3","mode":"NORMAL","workspaceId":"ws-1","repoBuckets":[{"folder":"","bucketId":"\#(bucketID)"}]}"#)
        let repoID = try #require(try Self.json(repo.body)["repoId"] as? String, "\(repo.body)")
        let key = try await a.get("/repo/\(repoID)/apikey", headers: auth + [("Content-Type", "application/json")], method: "POST",
                                  body: #"{"name":"reader","accessType":"READ","repoId":"\#(repoID)"}"#)
        let keyJSON = try Self.json(key.body)
        let (keyID, accessKey, secret) = (try #require(keyJSON["id"] as? String), try #require(keyJSON["key"] as? String), try #require(keyJSON["secret"] as? String))
        let nodeHeaders = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]
        // Signed once (the python signer takes longer to start than the notification needs).
        let signed = try await BotocoreSigner.signedRequest(method: "GET", url: "http://node.example:9000/gallery/cat.jpg", accessKeyID: accessKey, secret: secret)
        func authorizeOnB() async throws -> Int {
            try await b.get("/apikey/authorize", headers: nodeHeaders, method: "POST", body: signed).status
        }
        #expect(try await authorizeOnB() == 200)
        let revoked = try await a.get("/repo/\(repoID)/apikey/\(keyID)", headers: auth, method: "DELETE")
        #expect(revoked.status == 200, "\(revoked.body)")
        let start = ContinuousClock.now
        var status = try await authorizeOnB()
        while status == 200, ContinuousClock.now - start < .seconds(10) {
            try await Task.sleep(for: .milliseconds(2))
            status = try await authorizeOnB()
        }
        let elapsed = ContinuousClock.now - start
        print("cluster: a key revoked on A was refused on B after \(elapsed)")
        #expect(status == 403, "B refuses the revoked key")
        // The periodic reload is an hour away here: only the change notification explains this.
        #expect(elapsed < .seconds(5), "revocation reached B through the notification, not the hourly reload: \(elapsed)")
        let metrics = try await b.get("/metrics")
        #expect(metrics.body.contains("flashback_registry_up 1") && metrics.body.contains("flashback_registry_listening 1"))
        a.send(SIGTERM)
        b.send(SIGTERM)
        #expect(await a.waitForExit() == 0)
        #expect(await b.waitForExit() == 0)
    }

    @Test func aDatabaseOutageAnswers503WhileIngestGoesOnThenRecovers() async throws {
        let database = try await PostgresServer()
        let a = try replica("a", database, extra: ["--registry-timeout", "5"])
        defer { a.send(SIGKILL) }
        #expect(await a.waitFor(path: "/-/ready", status: 200))
        let auth = try await a.authorization(organization: organization)
        let created = try await a.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        let signer = try OpenSSLSigner(privateKeyPEM: created.body, directory: directory.path)
        let (_, token) = try await register(a, signer)

        try await database.stop()
        // Ingest from a known node goes on from the cache.
        let now = Int64(Date().timeIntervalSince1970)
        let write = try await a.get("/write", headers: [("Authorization", "Bearer \(token)")], method: "POST",
                                    body: "node_stats,bucket=bkt-1 bytes_in=10i \(now * 1_000_000_000)\n")
        #expect(write.status == 204, "\(write.body)")
        // Control-plane writes answer 503 with Retry-After, within the timeout.
        let started = ContinuousClock.now
        let refused = try await a.get("/organization/\(organization)/key", headers: auth, method: "POST")
        #expect(refused.status == 503 && refused.header("retry-after") == "5", "\(refused.status) \(refused.body)")
        #expect(refused.body.contains(#""success":false"#))
        #expect(ContinuousClock.now - started < .seconds(30), "no request hangs much past its 5 s timeout")
        let health = try await a.get("/health")
        #expect(health.body.contains(#""registry":"unavailable""#) && health.body.contains(#""status":"degraded""#), "\(health.body)")
        let ready = try await a.get("/-/ready")
        #expect(ready.status == 200 && ready.body.contains("degraded"), "\(ready.body)")
        #expect(try await a.get("/metrics").body.contains("flashback_registry_up 0"))

        // Back: writes go through again, and nothing acknowledged before is lost.
        try await database.start()
        var recovered = 0
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while recovered != 200, ContinuousClock.now < deadline {
            recovered = try await a.get("/organization/\(organization)/key", headers: auth, method: "POST").status
            if recovered != 200 { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(recovered == 200, "control-plane writes work again after the database returns")
        let keys = try Self.json(try await a.get("/organization/\(organization)/key", headers: auth).body)
        #expect((keys["data"] as? [[String: Any]])?.count == 2, "the key from before the outage and the one after")
        #expect(try await a.get("/health").body.contains(#""registry":"ok""#))
        let count = try await database.psql("SELECT count(*) FROM registry_nodes WHERE ip = '\(ip)'")
        #expect(count.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        a.send(SIGTERM)
        #expect(await a.waitForExit() == 0)
    }

    @Test func aSchemaNewerThanTheCollectorIsRefusedInOneLine() async throws {
        let database = try await PostgresServer()
        let first = try replica("a", database)
        defer { first.send(SIGKILL) }
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        first.send(SIGTERM)
        #expect(await first.waitForExit() == 0)
        #expect(try await database.psql("SELECT max(version) FROM flashback_schema_migrations").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        try await database.psql("INSERT INTO flashback_schema_migrations (version, summary) VALUES (99, 'from the future')")
        let second = try replica("a", database)
        defer { second.send(SIGKILL) }
        #expect(await second.waitForExit() == 1)
        let lines = second.standardError.split(separator: "\n").filter { $0.contains("error") }
        #expect(lines.count == 1 && lines[0].contains("schema version 99") && lines[0].contains("knows versions up to 1"), "\(second.standardError)")
    }
}

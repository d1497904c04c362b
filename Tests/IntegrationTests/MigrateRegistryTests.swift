import CollectorTesting
import Foundation
import Testing

/// `migrate-registry`: an embedded collector's control plane moved into PostgreSQL, then served
/// by a cluster-mode replica with the same master key.
@Suite("migrate-registry: embedded → PostgreSQL")
struct MigrateRegistryTests {
    let directory = TemporaryDirectory(prefix: "migrate")
    let organization = "org-m"
    let ip = "203.0.113.60"
    let region = "us-east-2"

    func migrate(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand(CollectorProcess.executableURL.path, ["migrate-registry"] + arguments)
    }

    @Test func anEmbeddedControlPlaneMovesOverAndKeepsWorking() async throws {
        let data = directory.appending("embedded")
        let embedded = try CollectorProcess(dataDirectory: data, logDirectory: directory.path)
        defer { embedded.send(SIGKILL) }
        #expect(await embedded.waitFor(path: "/-/ready", status: 200))
        let auth = try await embedded.authorization(organization: organization)
        let created = try await embedded.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        let signer = try OpenSSLSigner(privateKeyPEM: created.body, directory: directory.path)
        let stamp = String(Int64(Date().timeIntervalSince1970))
        let registerBody = """
            {"provider":"AWS","region":"\(region)","ip":"\(ip)","status":"running","version":"0.0.28","timestamp":\(stamp),"signature":"\(try await signer.signNodeMessage(ip: ip, region: region, timestamp: stamp))","id_org":"\(organization)"}
            """
        let registered = try await embedded.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: registerBody)
        let token = try #require(try ClusterModeTests.json(registered.body)["nodeToken"] as? String)
        let bucket = try await embedded.get("/bucket", headers: auth + [("Content-Type", "application/json")], method: "POST",
                                            body: #"{"name":"media","bucket":"media","storageType":"S3","workspaceId":"ws-1"}"#)
        let bucketID = try #require(try ClusterModeTests.json(bucket.body)["bucketId"] as? String)
        let repo = try await embedded.get("/repo", headers: auth + [("Content-Type", "application/json")], method: "POST",
                                          body: #"{"name":"site","storageType":"S3","mode":"NORMAL","workspaceId":"ws-1","repoBuckets":[{"folder":"","bucketId":"\#(bucketID)"}]}"#)
        let repoID = try #require(try ClusterModeTests.json(repo.body)["repoId"] as? String)
        let key = try ClusterModeTests.json(try await embedded.get("/repo/\(repoID)/apikey", headers: auth + [("Content-Type", "application/json")], method: "POST",
                                                                     body: #"{"name":"w","accessType":"WRITE","repoId":"\#(repoID)"}"#).body)
        let (accessKey, secret) = (try #require(key["key"] as? String), try #require(key["secret"] as? String))
        let keysBefore = try await embedded.get("/organization/\(organization)/key", headers: auth)

        // A running collector holds its data directory.
        let database = try await PostgresServer()
        let locked = try await migrate(["--from", data, "--to", database.url])
        #expect(locked.status != 0 && locked.standardError.contains("lock"), "\(locked.standardError)")
        embedded.send(SIGTERM)
        #expect(await embedded.waitForExit() == 0)

        let first = try await migrate(["--from", data, "--to", database.url])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("nodes: 1/1") && first.standardOutput.contains("repo API keys: 1/1"), "\(first.standardOutput)")
        #expect(first.standardOutput.contains("done: "), "\(first.standardOutput)")
        // A second run into the now non-empty database needs --merge, and then changes nothing.
        let refused = try await migrate(["--from", data, "--to", database.url])
        #expect(refused.status != 0 && refused.standardError.contains("--merge"), "\(refused.standardError)")
        let merged = try await migrate(["--from", data, "--to", database.url, "--merge"])
        #expect(merged.status == 0, "\(merged.standardError)")
        let counts = try await database.psql("SELECT (SELECT count(*) FROM registry_keys) || ' ' || (SELECT count(*) FROM registry_nodes) || ' ' || (SELECT count(*) FROM catalog_buckets) || ' ' || (SELECT count(*) FROM catalog_repositories) || ' ' || (SELECT count(*) FROM catalog_repo_keys)")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "1 1 1 1 1")

        // A replica on PostgreSQL with the data directory's master key serves it all.
        let replica = try CollectorProcess(dataDirectory: directory.appending("replica"), logDirectory: directory.path, arguments: [
            "--registry-url", database.url, "--master-key-file", data + "/master.key",
        ])
        defer { replica.send(SIGKILL) }
        #expect(await replica.waitFor(path: "/-/ready", status: 200))
        // The replica generated its own JWT secret; a token it accepts.
        let replicaUser = try await replica.authorization(organization: organization)
        let keysAfter = try await replica.get("/organization/\(organization)/key", headers: replicaUser)
        #expect(keysAfter.body == keysBefore.body, "keys and their node links come over unchanged")
        let write = try await replica.get("/write", headers: [("Authorization", "Bearer \(token)")], method: "POST",
                                          body: "node_stats,bucket=b bytes_in=1i \(Int64(Date().timeIntervalSince1970) * 1_000_000_000)\n")
        #expect(write.status == 204, "the node token issued by the embedded collector still works: \(write.body)")
        let replay = try await replica.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: registerBody)
        #expect(replay.status == 400 && replay.body.contains("replay"), "replay records came over: \(replay.body)")
        let request = try await BotocoreSigner.signedRequest(method: "PUT", url: "http://node.example:9000/site/index.html", accessKeyID: accessKey, secret: secret)
        let authorized = try await replica.get("/apikey/authorize", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                                               method: "POST", body: request)
        #expect(authorized.status == 200, "the repo key's sealed secret opens with the same master key: \(authorized.body)")
        replica.send(SIGTERM)
        #expect(await replica.waitForExit() == 0)
    }
}

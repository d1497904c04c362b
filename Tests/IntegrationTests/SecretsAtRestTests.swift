import CollectorAuth
import CollectorModel
import CollectorStore
import CollectorTesting
import Foundation
import Testing

/// After buckets and repo keys are created through the real binary, no file of the data
/// directory holds a provider secret or a repo-key secret in plaintext.
@Suite("secrets at rest: the real binary")
struct SecretsAtRestTests {
    let directory = TemporaryDirectory(prefix: "secrets-binary")
    var dataDirectory: String { directory.appending("data") }

    @Test func noPlaintextSecretOnDisk() async throws {
        let moto = try await MotoServer(logDirectory: directory.path)
        // moto listens on loopback: the SSRF guard must be opened for it.
        let collector = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path, arguments: ["--validate-allow-private"])
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let token = try await collector.userToken(organization: "org-1")
        let auth = [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")]

        let bucket = try await collector.get("/bucket", headers: auth, method: "POST", body: #"{"name":"data","bucket":"\#(moto.bucket)","storageType":"S3","key":"\#(moto.accessKeyID)","secret":"\#(moto.secretAccessKey)","endpoint":"\#(moto.endpoint)","region":"us-east-1","workspaceId":"ws"}"#)
        #expect(bucket.status == 200, "\(bucket.body)")
        let bucketID = try #require((try JSONSerialization.jsonObject(with: Data(bucket.body.utf8)) as? [String: Any])?["bucketId"] as? String)
        let repo = try await collector.get("/repo", headers: auth, method: "POST", body: #"{"name":"r","storageType":"S3","mode":"NORMAL","workspaceId":"ws","repoBuckets":[{"folder":"","bucketId":"\#(bucketID)"}]}"#)
        let repoID = try #require((try JSONSerialization.jsonObject(with: Data(repo.body.utf8)) as? [String: Any])?["repoId"] as? String)
        let key = try await collector.get("/repo/\(repoID)/apikey", headers: auth, method: "POST", body: #"{"name":"k","accessType":"WRITE"}"#)
        let keySecret = try #require((try JSONSerialization.jsonObject(with: Data(key.body.utf8)) as? [String: Any])?["secret"] as? String)

        // Both on disk after a clean shutdown (memtables flushed or in the WAL: both are searched).
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
        let grep = try await runCommand("/usr/bin/env", ["grep", "-r", "-l", "-a", "-F", "-e", moto.secretAccessKey, "-e", keySecret, dataDirectory])
        #expect(grep.status == 1, "grep found a plaintext secret in: \(grep.standardOutput)")
        // The same search finds what is stored in clear (the access key id), so it can see the records.
        let control = try await runCommand("/usr/bin/env", ["grep", "-r", "-l", "-a", "-F", "-e", moto.accessKeyID, dataDirectory])
        #expect(control.status == 0, "the control search found nothing: the records are not where the test looks")
        #expect(!collector.standardOutput.contains(moto.secretAccessKey) && !collector.standardOutput.contains(keySecret), "a secret reached the log")
        // …while the sealed records are there and still open after a restart.
        let again = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path, arguments: ["--validate-allow-private"])
        #expect(await again.waitFor(path: "/-/ready", status: 200))
        let validated = try await again.get("/bucket/\(bucketID)/validate", headers: auth, method: "POST")
        #expect(validated.status == 200, "\(validated.body)")
        again.send(SIGTERM)
        #expect(await again.waitForExit() == 0)
    }
}

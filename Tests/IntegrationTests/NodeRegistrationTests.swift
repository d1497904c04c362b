import CollectorTesting
import Foundation
import Testing

/// The node registry through the real binary: the installer's `openssl` command, a restart, and
/// everything still there afterwards.
@Suite("registry: the real binary across a restart")
struct NodeRegistrationTests {
    let directory = TemporaryDirectory(prefix: "registry-binary")
    var dataDirectory: String { directory.appending("data") }

    @Test func keysNodesAndLinksSurviveARestart() async throws {
        let first = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        let auth = try await first.authorization(organization: "org-7")

        // The installer's way: raw PEM, then `printf '%s' "$MSG" | openssl dgst -sha256 -sign key.pem | base64 -w 0`.
        let created = try await first.get("/organization/org-7/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(created.status == 200)
        #expect(created.header("content-type") == "application/x-pem-file")
        let signer = try OpenSSLSigner(privateKeyPEM: created.body, directory: directory.path)
        let timestamp = String(Int64(Date().timeIntervalSince1970))
        let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: timestamp)
        let body = #"{"provider":"AWS","region":"eu-central-1","ip":"203.0.113.10","status":"running","version":"0.0.28","timestamp":\#(timestamp),"signature":"\#(signature)","id_org":"org-7"}"#
        let registered = try await first.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: body)
        #expect(registered.status == 200, "\(registered.body)")
        #expect(registered.body.contains(#""nodeToken":"fbn1."#))

        let keysBefore = try await first.get("/organization/org-7/key", headers: auth)
        let nodesBefore = try await first.get("/organization/org-7/nodes", headers: auth)
        #expect(keysBefore.body.contains(#""nodeId":"203.0.113.10""#))
        #expect(nodesBefore.body.contains(#""total":1"#))
        first.send(SIGTERM)
        #expect(await first.waitForExit() == 0)

        let second = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await second.waitFor(path: "/-/ready", status: 200))
        let keysAfter = try await second.get("/organization/org-7/key", headers: auth)
        let nodesAfter = try await second.get("/organization/org-7/nodes", headers: auth)
        #expect(keysAfter.body == keysBefore.body)
        // Same node, same id; only the derived status and last-heard time may move.
        #expect(nodesAfter.body.contains(#""ip":"203.0.113.10""#))
        #expect(nodesAfter.body.contains(#""total":1"#))
        // The signature was consumed before the restart: replaying it is still refused.
        let replayed = try await second.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: body)
        #expect(replayed.status == 400)
        #expect(replayed.body.contains("replay"))
        second.send(SIGTERM)
        #expect(await second.waitForExit() == 0)
    }
}

import CollectorTesting
import Foundation
import Testing

/// The official node installer's request sequence (`rollout_node.sh`: `POST /secrets`, then
/// `POST /register`; the node then reports with `POST /status`) against the real binary, with
/// signatures made by the `openssl` CLI and the env files decrypted with the installer's own
/// steps, `openssl` only.
@Suite("Node installer: /secrets, /register, /status as the official installer sends them")
struct NodeInstallerTests {
    let directory = TemporaryDirectory(prefix: "installer")
    let ip = "198.51.100.23"
    let region = "eu-central-1"

    /// The operator's env files: defaults for s3 and gcs, and an organization-specific gcs file
    /// that must win over the default. No blob file: the answer must leave blob out.
    func writeEnvironment(organization: String) throws -> String {
        let root = directory.appending("node-env")
        try FileManager.default.createDirectory(atPath: root + "/" + organization, withIntermediateDirectories: true)
        try "SERVICE=s3\nREGISTER=${FLASHBACK_REGISTER_URL}\nREPORT=${FLASHBACK_STATUS_URL}\nORG=${FLASHBACK_ORG_ID}\nREGION=${FLASHBACK_REGION}\nKEEP=${HOME}\n"
            .write(toFile: root + "/s3.env", atomically: true, encoding: .utf8)
        try "SERVICE=gcs-default\n".write(toFile: root + "/gcs.env", atomically: true, encoding: .utf8)
        try "SERVICE=gcs-\(organization)\nWRITE=${FLASHBACK_WRITE_URL}\n".write(toFile: root + "/\(organization)/gcs.env", atomically: true, encoding: .utf8)
        return root
    }

    /// Decrypts one `env_<svc>_enc` value exactly as the installer does: RSA-OAEP (SHA-256) with
    /// `openssl pkeyutl`, the HMAC over iv ‖ ct with `openssl dgst`, AES-256-CTR with `openssl enc`.
    /// Exit status 3 when the HMAC does not match.
    func decryptAsInstaller(_ envelope: String, privateKey: String) async throws -> CommandResult {
        let parts = try #require(JSONSerialization.jsonObject(with: Data(envelope.utf8)) as? [String: String])
        let script = """
            set -euo pipefail
            work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
            printf '%s' "$KEY_B64" | base64 -d > "$work/key.enc"
            printf '%s' "$IV_B64" | base64 -d > "$work/iv"
            printf '%s' "$CT_B64" | base64 -d > "$work/ct"
            openssl pkeyutl -decrypt -inkey "$PRIVATE_KEY" -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 \\
                -in "$work/key.enc" -out "$work/key"
            key_hex=$(od -An -tx1 -v "$work/key" | tr -d ' \\n')
            iv_hex=$(od -An -tx1 -v "$work/iv" | tr -d ' \\n')
            mac=$(cat "$work/iv" "$work/ct" | openssl dgst -sha256 -mac HMAC -macopt hexkey:"$key_hex" -binary | base64)
            [ "$mac" = "$MAC_B64" ] || { echo "HMAC verification failed" >&2; exit 3; }
            openssl enc -d -aes-256-ctr -K "$key_hex" -iv "$iv_hex" -in "$work/ct" -nosalt
            """
        return try await runCommand("/bin/bash", ["-c", script], environment: [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
            "KEY_B64": try #require(parts["key"]), "IV_B64": try #require(parts["iv"]), "CT_B64": try #require(parts["ct"]),
            "MAC_B64": try #require(parts["mac"]), "PRIVATE_KEY": privateKey,
        ])
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)")
    }

    @Test func theInstallersSequenceBringsANodeOnline() async throws {
        let organization = "org-inst"
        let collector = try CollectorProcess(
            dataDirectory: directory.appending("data"), logDirectory: directory.path,
            arguments: ["--node-env-dir", try writeEnvironment(organization: organization), "--public-url", "https://collector.example.test/"])
        defer { collector.send(SIGKILL) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let auth = try await collector.authorization(organization: organization)
        let key = try await collector.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(key.status == 200)
        let signer = try OpenSSLSigner(privateKeyPEM: key.body, directory: directory.path)

        // [5/7] of the installer: /secrets, signed ip|region|timestamp, timestamp a JSON number.
        let stamp = String(Int64(Date().timeIntervalSince1970))
        let signature = try await signer.signNodeMessage(ip: ip, region: region, timestamp: stamp)
        let secretsBody = #"{"ip":"\#(ip)","region":"\#(region)","timestamp":\#(stamp),"signature":"\#(signature)","id_org":"\#(organization)"}"#
        let secrets = try await collector.get("/secrets", headers: [("Content-Type", "application/json")], method: "POST", body: secretsBody)
        #expect(secrets.status == 200, "\(secrets.body)")
        let answer = try json(secrets.body)
        #expect(answer["env_blob"] == nil && answer["env_blob_enc"] == nil, "no blob file, no blob entry")
        #expect(answer["env_s3"] == nil, "sealed unless the operator turns it off")
        let s3 = try await decryptAsInstaller(try #require(answer["env_s3_enc"] as? String), privateKey: signer.keyPath)
        #expect(s3.status == 0, "\(s3.standardError)")
        #expect(s3.standardOutput == """
            SERVICE=s3
            REGISTER=https://collector.example.test/register
            REPORT=https://collector.example.test/status
            ORG=\(organization)
            REGION=\(region)
            KEEP=${HOME}

            """)
        let gcs = try await decryptAsInstaller(try #require(answer["env_gcs_enc"] as? String), privateKey: signer.keyPath)
        #expect(gcs.standardOutput == "SERVICE=gcs-\(organization)\nWRITE=https://collector.example.test/write\n", "the organization's own file wins")
        // The installer's HMAC check can fail: a changed ciphertext is refused before decryption.
        var tampered = try #require(try JSONSerialization.jsonObject(with: Data((answer["env_s3_enc"] as? String ?? "").utf8)) as? [String: String])
        var ciphertext = try #require(Data(base64Encoded: tampered["ct"] ?? ""))
        ciphertext[0] ^= 0x01
        tampered["ct"] = ciphertext.base64EncodedString()
        let refused = try await decryptAsInstaller(String(decoding: try JSONSerialization.data(withJSONObject: tampered), as: UTF8.self), privateKey: signer.keyPath)
        #expect(refused.status == 3)
        // The same signed request again is a replay.
        let again = try await collector.get("/secrets", headers: [("Content-Type", "application/json")], method: "POST", body: secretsBody)
        #expect(again.status == 400 && again.body.contains("replay"), "\(again.body)")
        #expect(!collector.standardOutput.contains("SERVICE=") && !collector.standardError.contains("SERVICE="), "env contents are never logged")

        // Registration in the same second: the same text, so the same signature as /secrets;
        // it is a different use and must be accepted.
        let register = try await collector.get("/register", headers: [("Content-Type", "application/json")], method: "POST", body: """
            {"provider":"AWS","region":"\(region)","ip":"\(ip)","status":"running","version":"0.0.28","timestamp":\(stamp),"signature":"\(signature)","id_org":"\(organization)"}
            """)
        #expect(register.status == 200, "\(register.body)")

        // The node reports its bucket; the fleet view shows it ONLINE.
        let later = String(Int64(stamp)! + 1)
        let status = try await collector.get("/status", headers: [("Content-Type", "application/json")], method: "POST", body: """
            {"ip":"\(ip)","region":"\(region)","timestamp":\(later),"signature":"\(try await signer.signNodeMessage(ip: ip, region: region, timestamp: later))","id_org":"\(organization)","buckets":[{"unitId":"bkt-1","status":"ONLINE","latencyMs":21}]}
            """)
        #expect(status.status == 200, "\(status.body)")
        let minute = try await collector.get("/stats/nodes/minute?bucketId=bkt-1", headers: auth)
        #expect(minute.status == 200)
        #expect(minute.body.contains(#""nodeStatus":"ONLINE""#), "\(minute.body)")
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }

    @Test func plaintextOnlyWhenTheOperatorSaysSoAndNothingWithoutADirectory() async throws {
        let organization = "org-plain"
        let plain = try CollectorProcess(
            dataDirectory: directory.appending("plain"), logDirectory: directory.path,
            arguments: ["--node-env-dir", try writeEnvironment(organization: organization), "--node-env-plaintext"])
        defer { plain.send(SIGKILL) }
        let bare = try CollectorProcess(dataDirectory: directory.appending("bare"), logDirectory: directory.path)
        defer { bare.send(SIGKILL) }
        #expect(await plain.waitFor(path: "/-/ready", status: 200))
        #expect(await bare.waitFor(path: "/-/ready", status: 200))
        for collector in [plain, bare] {
            let auth = try await collector.authorization(organization: organization)
            let key = try await collector.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
            let signer = try OpenSSLSigner(privateKeyPEM: key.body, directory: directory.path)
            let stamp = String(Int64(Date().timeIntervalSince1970))
            let response = try await collector.get("/secrets", headers: [("Content-Type", "application/json")], method: "POST", body: """
                {"ip":"\(ip)","region":"\(region)","timestamp":\(stamp),"signature":"\(try await signer.signNodeMessage(ip: ip, region: region, timestamp: stamp))","org_id":"\(organization)"}
                """)
            if collector === plain {
                #expect(response.status == 200, "\(response.body)")
                let answer = try json(response.body)
                let s3 = try #require(Data(base64Encoded: answer["env_s3"] as? String ?? ""))
                #expect(String(decoding: s3, as: UTF8.self).hasPrefix("SERVICE=s3\nREGISTER=http://127.0.0.1:\(plain.httpPort)/register\n"))
                #expect(answer["env_s3_enc"] == nil)
            } else {
                #expect(response.status == 404, "\(response.body)")
                #expect(try json(response.body)["success"] as? Bool == false)
            }
        }
    }
}

import CollectorAuth
import CollectorModel
import CollectorStore
import CollectorTesting
import Foundation
import Testing

/// `flashback-collector token` against a running `serve` on the same data directory.
@Suite("token: minted tokens against a running collector")
struct TokenCommandTests {
    let directory = TemporaryDirectory(prefix: "token")
    var dataDirectory: String { directory.appending("data") }

    func runToken(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String, error: String) {
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLASHBACK_") }
        env.merge(environment) { _, new in new }
        let result = try await runCommand(CollectorProcess.executableURL.path, ["token", "--data-dir", dataDirectory] + arguments, environment: env)
        return (result.status, result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines), result.standardError)
    }

    @Test func tokenFromTheCLIIsAcceptedAndAlteredOnesAreNot() async throws {
        let collector = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        defer { collector.send(SIGTERM) }

        let minted = try await runToken(["--org", "org-7", "--user", "ops", "--role", "admin", "--workspace", "w1", "--workspace", "w2", "--ttl", "10m"])
        #expect(minted.status == 0, "stderr: \(minted.error)")
        let token = minted.output
        let ok = try await collector.get("/whoami", headers: [("Authorization", "Bearer \(token)")])
        #expect(ok.status == 200)
        #expect(ok.body.contains(#""organization":"org-7""#))
        #expect(ok.body.contains(#""role":254"#))
        #expect(ok.body.contains(#""workspaces":["w1","w2"]"#))

        // One character changed (in the signature).
        var characters = Array(token)
        let index = characters.count - 5
        characters[index] = characters[index] == "x" ? "y" : "x"
        let altered = try await collector.get("/whoami", headers: [("Authorization", "Bearer \(String(characters))")])
        #expect(altered.status == 401)
        #expect(altered.header("content-type")?.hasPrefix("application/json") == true)
        #expect(altered.body.contains(#""success":false"#))

        // Expired: signed with the collector's own secret, but in the past.
        let secret = try SecretFile.load(at: dataDirectory + "/jwt.secret", byteCount: 32)
        let authority = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: secret))
        let expired = try await authority.mint(
            for: CallerIdentity(organization: "org-7", user: "ops", role: .administrators),
            lifetime: 60, now: Date(timeIntervalSinceNow: -3600))
        let late = try await collector.get("/whoami", headers: [("Authorization", "Bearer \(expired)")])
        #expect(late.status == 401)
        #expect(late.body.contains("expired"))

        // Signed with another secret.
        let foreign = try await runToken(["--org", "org-7", "--user", "ops", "--role", "owner", "--jwt-secret", "a-different-secret-0123456789-abcdef"])
        #expect(foreign.status == 0)
        let wrong = try await collector.get("/whoami", headers: [("Authorization", "Bearer \(foreign.output)")])
        #expect(wrong.status == 401)
        #expect(wrong.body.contains("signature"))

        // No token at all.
        let anonymous = try await collector.get("/whoami")
        #expect(anonymous.status == 401)
    }

    @Test func configuredSecretComesFromFlagEnvironmentOrConfigFile() async throws {
        let fileSecret = "secret-from-the-config-file-0001"
        let envSecret = "secret-from-the-environment-0002"
        let configPath = directory.appending("collector.json")
        try Data(#"{"jwt-secret": "\#(fileSecret)"}"#.utf8).write(to: URL(fileURLWithPath: configPath))
        // The server takes the secret from the environment, over the config file.
        let collector = try CollectorProcess(
            dataDirectory: dataDirectory, logDirectory: directory.path,
            arguments: ["--config", configPath], environment: ["FLASHBACK_JWT_SECRET": envSecret])
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        defer { collector.send(SIGTERM) }

        let fromEnv = try await runToken(["--org", "o", "--user", "u", "--role", "user"], environment: ["FLASHBACK_JWT_SECRET": envSecret])
        let fromFile = try await runToken(["--org", "o", "--user", "u", "--role", "user", "--config", configPath])
        let fromFlag = try await runToken(["--org", "o", "--user", "u", "--role", "user", "--config", configPath, "--jwt-secret", envSecret],
                                    environment: ["FLASHBACK_JWT_SECRET": fileSecret])
        #expect(try await collector.get("/whoami", headers: [("Authorization", "Bearer \(fromEnv.output)")]).status == 200)
        #expect(try await collector.get("/whoami", headers: [("Authorization", "Bearer \(fromFile.output)")]).status == 401)
        #expect(try await collector.get("/whoami", headers: [("Authorization", "Bearer \(fromFlag.output)")]).status == 200)
    }

    @Test func badArgumentsAreRefused() async throws {
        let badRole = try await runToken(["--org", "o", "--user", "u", "--role", "root"])
        #expect(badRole.status != 0)
        #expect(badRole.error.contains("role"))
        let badTTL = try await runToken(["--org", "o", "--user", "u", "--role", "user", "--ttl", "soon"])
        #expect(badTTL.status != 0)
        #expect(badTTL.error.contains("ttl"))
    }
}

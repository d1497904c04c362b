import CollectorTesting
import Foundation
import Testing

/// The OpenAPI document against the built binary: `openapi-spec-validator` accepts it, and
/// schemathesis (PyPI) drives every operation with an owner token and finds no server error, no
/// undocumented status code and no answer outside its schema.
@Suite("OpenAPI: schemathesis against the real binary")
struct OpenAPIConformanceTests {
    let directory = TemporaryDirectory(prefix: "schemathesis")

    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/openapi.json").path

    /// Runs `command` through `env` off the cooperative pool (schemathesis takes a minute or two).
    func run(_ command: [String]) async throws -> (status: Int32, output: String) {
        let directory = self.directory.path
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(with: Result {
                    let outputPath = directory + "/\(UUID().uuidString).log"
                    FileManager.default.createFile(atPath: outputPath, contents: nil)
                    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
                    defer { try? output.close() }
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    process.arguments = command
                    process.currentDirectoryURL = URL(fileURLWithPath: directory)
                    process.standardOutput = output
                    process.standardError = output
                    process.standardInput = FileHandle.nullDevice
                    try launch(process)
                    process.waitUntilExit()
                    return (process.terminationStatus, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
                })
            }
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func everyOperationConformsToTheDocument() async throws {
        let validation = try await run(["python3", "-m", "openapi_spec_validator", Self.document])
        #expect(validation.status == 0, "\(validation.output)")

        // With admin endpoints on, so that schemathesis reaches them (it sends a user token: 401).
        let tokenFile = directory.path + "/admin.token"
        try "schemathesis-admin-token-0123456789".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let collector = try CollectorProcess(dataDirectory: directory.path + "/data", logDirectory: directory.path,
                                             arguments: ["--admin-token-file", tokenFile])
        defer { collector.send(SIGKILL) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let token = try await collector.userToken(organization: "org-schemathesis")
        // A fixed seed keeps CI reproducible; run without it (and with more examples) to explore.
        let result = try await run([
            "schemathesis", "run", Self.document, "--url", collector.baseURL,
            "-H", "Authorization: Bearer \(token)",
            "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
            "--max-examples", "15", "--seed", "20261201", "--output-truncate", "true", "--no-color",
        ])
        let summary = result.output.split(separator: "\n").suffix(40).joined(separator: "\n")
        #expect(result.status == 0, "schemathesis found failures:\n\(summary)")
        // Every operation of the document was exercised.
        let paths = try #require((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.document))) as? [String: Any])?["paths"] as? [String: [String: Any]])
        let operations = paths.values.reduce(0) { $0 + $1.keys.filter { ["get", "put", "post", "delete", "head"].contains($0) }.count }
        #expect(result.output.contains("Tested: \(operations)\n"), "expected \(operations) operations tested:\n\(summary)")
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Azure Blob Storage's Shared Key as Microsoft's Python SDK (`azure-storage-blob`) computes it,
/// through `Tests/python/azure_shared_key.py`: no Azure Storage emulator installs from Debian or
/// PyPI (Azurite is an npm package), so the SDK's signer is the reference.
public final class AzureBlobEndpoint: @unchecked Sendable {
    public let account = "flashbacktest"
    /// The account key as the Azure portal shows it (Base64 of 64 random bytes).
    public let accountKey: String
    public let container: String
    public let port: Int
    /// One JSON line per request the endpoint judged (`problem`, `found`).
    public let decisionLog: String
    private let server = Process()

    public var url: String { "http://127.0.0.1:\(port)" }

    /// Starts a Blob endpoint that checks every request's Shared Key signature with the SDK and
    /// answers Get Container Properties for one container; throws when the SDK is not installed
    /// (`scripts/install-deps.sh --test`).
    public init(container: String = "flashback-blobs", directory: String) async throws {
        self.container = container
        accountKey = Data((0..<64).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        port = freeLoopbackPort()
        decisionLog = (directory as NSString).appendingPathComponent("azure-\(port).log")
        let output = (directory as NSString).appendingPathComponent("azure-\(port).out")
        guard FileManager.default.createFile(atPath: decisionLog, contents: nil),
              FileManager.default.createFile(atPath: output, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", Self.script, "serve", String(port), account, accountKey, container, decisionLog]
        server.standardOutput = FileHandle(forWritingAtPath: output)
        server.standardError = FileHandle(forWritingAtPath: output)
        try launch(server)
        let deadline = ContinuousClock.now.advanced(by: .seconds(30))
        while ContinuousClock.now < deadline, server.isRunning {
            if (try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(url)/ready"), timeout: .seconds(2))) != nil {
                try? FileManager.default.removeItem(atPath: decisionLog)
                _ = FileManager.default.createFile(atPath: decisionLog, contents: nil)
                return
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        throw OpenSSLError(description: "the Azure Blob endpoint did not start: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
    }

    /// The decisions so far.
    public func decisions() -> [[String: Any]] {
        ((try? String(contentsOfFile: decisionLog, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// One request for the SDK to sign.
    public struct SigningRequest: Encodable, Sendable {
        public var method: String
        public var url: String
        public var headers: [[String]]
        public var account: String
        public var key: String

        public init(method: String, url: String, headers: [(String, String)], account: String, key: String) {
            self.method = method
            self.url = url
            self.headers = headers.map { [$0.0, $0.1] }
            self.account = account
            self.key = key
        }
    }

    /// The `Authorization` header the SDK's `SharedKeyCredentialPolicy` puts on each request.
    public static func sdkAuthorizations(_ requests: [SigningRequest], directory: String) async throws -> [String] {
        let path = (directory as NSString).appendingPathComponent("azure-sign-\(UUID().uuidString).json")
        try JSONEncoder().encode(requests).write(to: URL(fileURLWithPath: path))
        let result = try await runCommand("/usr/bin/env", ["python3", script, "sign", path])
        guard result.status == 0 else { throw OpenSSLError(description: "azure_shared_key.py sign failed: \(result.standardError)") }
        let answers = try JSONDecoder().decode([[String: String]].self, from: Data(result.standardOutput.utf8))
        return answers.map { $0["authorization"] ?? "" }
    }

    static var script: String { (MotoServer.pythonDirectory as NSString).appendingPathComponent("azure_shared_key.py") }

    deinit {
        if server.isRunning {
            kill(server.processIdentifier, SIGKILL)
            server.waitUntilExit()
        }
    }
}

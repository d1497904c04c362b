import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A GCS JSON API for tests (PyPI `gcp-storage-emulator`, in memory) with one bucket, and a
/// Google OAuth2 token endpoint (`Tests/python/gcs_token_server.py`) that grants tokens only to
/// assertions signed by one service account's key.
public final class GCSEmulator: @unchecked Sendable {
    public let bucket: String
    public let apiPort: Int
    public let tokenPort: Int
    /// The service account's client email and PKCS#8 private key, as Google hands them out.
    public let clientEmail = "collector@flashback-test.iam.gserviceaccount.com"
    public let privateKeyPEM: String
    /// One JSON line per token decision (`granted`, `problem`).
    public let tokenLog: String
    private let emulator = Process()
    private let tokenServer = Process()

    public var apiURL: String { "http://127.0.0.1:\(apiPort)" }
    public var tokenURL: String { "http://127.0.0.1:\(tokenPort)/token" }

    /// Starts both; throws when the emulator is not installed (`scripts/install-deps.sh --test`).
    public init(bucket: String = "flashback-photos", directory: String) async throws {
        self.bucket = bucket
        apiPort = freeLoopbackPort()
        tokenPort = freeLoopbackPort()
        tokenLog = (directory as NSString).appendingPathComponent("gcs-token-\(tokenPort).log")
        let keyPath = (directory as NSString).appendingPathComponent("service-account-\(tokenPort).pem")
        let publicPath = keyPath + ".pub"
        _ = try await OpenSSLSigner.shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out \"$KEY\" 2>/dev/null && openssl pkey -in \"$KEY\" -pubout -out \"$PUB\"",
                                    environment: ["KEY": keyPath, "PUB": publicPath])
        privateKeyPEM = try String(contentsOfFile: keyPath, encoding: .utf8)
        guard FileManager.default.createFile(atPath: tokenLog, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        // One output file each (two writers of one file would overwrite each other's lines).
        let log = (directory as NSString).appendingPathComponent("gcs-\(apiPort).log")
        let tokenServerLog = (directory as NSString).appendingPathComponent("gcs-token-server-\(tokenPort).log")
        for (process, output, arguments) in [
            (emulator, log, ["gcp-storage-emulator", "start", "--host", "127.0.0.1", "--port", String(apiPort), "--in-memory"]),
            (tokenServer, tokenServerLog, ["python3", (MotoServer.pythonDirectory as NSString).appendingPathComponent("gcs_token_server.py"),
                                           String(tokenPort), publicPath, clientEmail, tokenLog]),
        ] {
            guard FileManager.default.createFile(atPath: output, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = arguments
            process.standardOutput = FileHandle(forWritingAtPath: output)
            process.standardError = FileHandle(forWritingAtPath: output)
            try launch(process)
        }
        // Ready when the bucket is created (the emulator needs no credentials) and the token
        // server answers; the two may come up in either order (a bucket created while the token
        // server was still starting answers 409 to the next attempt).
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        var bucketCreated = false
        var created = false
        while ContinuousClock.now < deadline, emulator.isRunning, tokenServer.isRunning {
            if !bucketCreated {
                var request = HTTPClientRequest(url: "\(apiURL)/storage/v1/b?project=flashback-test")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"name":"\#(bucket)"}"#))
                if let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(2)), response.status.code == 200 {
                    bucketCreated = true
                }
            }
            if bucketCreated, (try? await HTTPClient.shared.execute(HTTPClientRequest(url: tokenURL), timeout: .seconds(2))) != nil {
                created = true
                break
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard created else {
            throw OpenSSLError(description: """
                the GCS emulator or token server did not start (bucket created: \(bucketCreated), emulator running: \(emulator.isRunning), \
                token server running: \(tokenServer.isRunning)); emulator: \((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2000) ?? ""); \
                token server: \((try? String(contentsOfFile: tokenServerLog, encoding: .utf8))?.suffix(2000) ?? "")
                """)
        }
    }

    /// The token decisions so far.
    public func tokenDecisions() -> [[String: Any]] {
        ((try? String(contentsOfFile: tokenLog, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    deinit {
        for process in [emulator, tokenServer] where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A real S3 endpoint for tests: moto's server mode (PyPI `moto[server]`) on a loopback port,
/// with one bucket and one IAM key, and signature checking switched on.
public final class MotoServer: @unchecked Sendable {
    public let process = Process()
    public let port: Int
    public let bucket: String
    public private(set) var accessKeyID = ""
    public private(set) var secretAccessKey = ""
    /// A role the IAM key may assume (external id `flashback-external-id`), allowed s3:*.
    public private(set) var roleARN = ""

    public var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The `Tests/python` folder of this repository.
    public static var pythonDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/python").path
    }

    /// Starts moto and prepares it; throws when moto is not installed (`scripts/test.sh` installs it).
    public init(bucket: String = "flashback-data", logDirectory: String) async throws {
        self.bucket = bucket
        port = freeLoopbackPort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
        let log = (logDirectory as NSString).appendingPathComponent("moto-\(port).log")
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try launch(process)

        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        var up = false
        while ContinuousClock.now < deadline, process.isRunning {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "\(endpoint)/moto-api/"), timeout: .seconds(2)),
               response.status.code < 500 {
                up = true
                break
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        guard up else {
            throw OpenSSLError(description: "moto did not start (is `moto[server]` installed? scripts/test.sh installs it): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
        let output = try await OpenSSLSigner.shell(
            "python3 \"$DIR/moto_s3_setup.py\" \"$ENDPOINT\" \"$BUCKET\"",
            environment: ["DIR": Self.pythonDirectory, "ENDPOINT": endpoint, "BUCKET": bucket])
        let credentials = try JSONDecoder().decode([String: String].self, from: Data(output.utf8))
        accessKeyID = credentials["accessKeyId"] ?? ""
        secretAccessKey = credentials["secretAccessKey"] ?? ""
        roleARN = credentials["roleArn"] ?? ""
    }

    deinit {
        // SIGKILL: a child spawned from a test thread may have SIGTERM blocked, and moto must not
        // outlive the test run either way.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// Signs S3 requests with botocore, as an app's SDK does (`Tests/python/sign_s3_request.py`).
public enum BotocoreSigner {
    /// The JSON body for `POST /apikey/authorize` describing the signed request.
    public static func signedRequest(method: String, url: String, accessKeyID: String, secret: String, region: String = "us-east-1", payload: String = "") async throws -> String {
        try await OpenSSLSigner.shell(
            "python3 \"$DIR/sign_s3_request.py\" \"$METHOD\" \"$URL\" \"$KEY\" \"$SECRET\" \"$REGION\" \"$PAYLOAD\"",
            environment: ["DIR": MotoServer.pythonDirectory, "METHOD": method, "URL": url, "KEY": accessKeyID,
                          "SECRET": secret, "REGION": region, "PAYLOAD": payload])
    }

    /// The JSON body for `POST /apikey/authorize` describing a request to a URL presigned by
    /// boto3's `generate_presigned_url` (path-style `url`), signed at `signedAt` (default: now).
    public static func presignedRequest(method: String, url: String, accessKeyID: String, secret: String, expires: Int,
                                        signedAt: Date? = nil) async throws -> String {
        try await OpenSSLSigner.shell(
            "python3 \"$DIR/presign_s3_url.py\" \"$METHOD\" \"$URL\" \"$KEY\" \"$SECRET\" \"$EXPIRES\" \"$SIGNED_AT\"",
            environment: ["DIR": MotoServer.pythonDirectory, "METHOD": method, "URL": url, "KEY": accessKeyID, "SECRET": secret,
                          "EXPIRES": String(expires), "SIGNED_AT": signedAt.map { String(Int64($0.timeIntervalSince1970)) } ?? ""])
    }
}

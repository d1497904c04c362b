import Foundation

/// Signs node messages exactly as the official installer does:
/// `printf '%s' "$MSG" | openssl dgst -sha256 -sign key.pem | base64 -w 0`.
///
/// Uses the real `openssl` CLI (Debian's `openssl` package), so tests prove that signatures made
/// by bridge nodes in the field are accepted.
public struct OpenSSLSigner: Sendable {
    /// The PEM private key file.
    public let keyPath: String

    /// Writes `privateKeyPEM` into `directory` (mode 0600) and signs with it.
    public init(privateKeyPEM: String, directory: String) throws {
        keyPath = (directory as NSString).appendingPathComponent("org-\(UUID().uuidString.prefix(8)).pem")
        guard FileManager.default.createFile(atPath: keyPath, contents: Data(privateKeyPEM.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    /// Generates a fresh RSA-2048 key with `openssl genrsa` (PKCS#1, as the collector hands out).
    public static func generate(directory: String) async throws -> OpenSSLSigner {
        let path = (directory as NSString).appendingPathComponent("generated-\(UUID().uuidString.prefix(8)).pem")
        _ = try await shell("openssl genrsa -traditional -out \"$KEY\" 2048 2>/dev/null", environment: ["KEY": path])
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        return try OpenSSLSigner(privateKeyPEM: pem, directory: directory)
    }

    /// The Base64 signature of `message` (no trailing newline is signed).
    public func sign(_ message: String) async throws -> String {
        try await Self.shell("printf '%s' \"$MSG\" | openssl dgst -sha256 -sign \"$KEY\" | base64 -w 0", environment: ["MSG": message, "KEY": keyPath])
    }

    /// The public key (SPKI PEM) of the private key.
    public func publicKeyPEM() async throws -> String {
        try await Self.shell("openssl rsa -in \"$KEY\" -pubout 2>/dev/null", environment: ["KEY": keyPath])
    }

    /// Signs `ip|region|timestamp` as a node does for `/register`, `/unregister` and `/status`.
    public func signNodeMessage(ip: String, region: String, timestamp: String) async throws -> String {
        try await sign("\(ip)|\(region)|\(timestamp)")
    }

    @discardableResult
    static func shell(_ script: String, environment: [String: String]) async throws -> String {
        let result = try await runCommand("/bin/sh", ["-c", script], environment: ProcessInfo.processInfo.environment.merging(environment) { _, new in new })
        guard result.status == 0 else {
            throw OpenSSLError(description: "`\(script)` exited with \(result.status): \(result.standardError)")
        }
        return result.standardOutput
    }
}

/// The `openssl` CLI failed.
public struct OpenSSLError: Error, CustomStringConvertible {
    public let description: String
}

/// A clock tests move by hand.
public final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    /// A `ManualClock` from its parts.
    public init(_ start: Date = Date(timeIntervalSince1970: 1_760_000_000)) {
        current = start
    }

    public var now: Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) {
        lock.lock()
        current = current.addingTimeInterval(seconds)
        lock.unlock()
    }

    /// A closure reading this clock, to inject where `() -> Date` is expected.
    public var source: @Sendable () -> Date { { [self] in now } }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The built `flashback-collector` binary run as a child process, for integration tests.
///
/// Standard output and standard error are captured to files in the data directory's parent so
/// tests can read what an operator would see.
public final class CollectorProcess: @unchecked Sendable {
    public let process = Process()
    public let httpPort: Int
    public let udpPort: Int
    public let dataDirectory: String
    public let stdoutPath: String
    public let stderrPath: String

    /// The `flashback-collector` executable next to the test bundle (`.build/<config>/`).
    public static var executableURL: URL {
        if let explicit = ProcessInfo.processInfo.environment["FLASHBACK_COLLECTOR_BIN"] {
            return URL(fileURLWithPath: explicit)
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("flashback-collector")
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
            directory.deleteLastPathComponent()
        }
        preconditionFailure("flashback-collector binary not found next to \(CommandLine.arguments[0]); set FLASHBACK_COLLECTOR_BIN")
    }

    /// Starts `flashback-collector serve` with loopback ports and `dataDirectory`.
    /// - Parameters:
    ///   - arguments: extra arguments after `serve`.
    ///   - environment: extra environment variables.
    public init(
        dataDirectory: String,
        logDirectory: String,
        httpPort: Int = freeLoopbackPort(),
        udpPort: Int = freeLoopbackPort(udp: true),
        arguments: [String] = [],
        environment: [String: String] = [:],
        subcommand: [String] = ["serve"]
    ) throws {
        self.httpPort = httpPort
        self.udpPort = udpPort
        self.dataDirectory = dataDirectory
        let id = UUID().uuidString.prefix(6)
        stdoutPath = (logDirectory as NSString).appendingPathComponent("collector-\(id).out")
        stderrPath = (logDirectory as NSString).appendingPathComponent("collector-\(id).err")
        guard FileManager.default.createFile(atPath: stdoutPath, contents: nil),
              FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
            throw CocoaError(.fileWriteUnknown)
        }
        process.executableURL = Self.executableURL
        process.arguments = subcommand + [
            "--data-dir", dataDirectory,
            "--http-address", "127.0.0.1:\(httpPort)",
            "--udp-address", "127.0.0.1:\(udpPort)",
        ] + arguments
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("FLASHBACK_") }
        env.merge(environment) { _, new in new }
        process.environment = env
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try launch(process)
    }

    /// Everything the process wrote to stdout so far.
    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    /// Everything the process wrote to stderr so far.
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// The base URL of the HTTP API.
    public var baseURL: String { "http://127.0.0.1:\(httpPort)" }

    /// Polls `path` until it answers `status`, the process exits, or `timeout` passes.
    /// - Returns: whether the status was seen.
    public func waitFor(path: String = "/-/ready", status: Int = 200, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline, process.isRunning {
            if let response = try? await get(path), response.status == status { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Waits for the process to exit and returns its status, or `nil` after `timeout`.
    public func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Sends `signal` to the process.
    public func send(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// A GET (or other method) to the collector; returns status, headers and body text. The
    /// deadline only guards against a hung server: at the start of the full suite, dozens of
    /// processes share two cores, and an answer that needs a key generated took over 10 s once.
    public func get(_ path: String, headers: [(String, String)] = [], method: String = "GET", body: String? = nil) async throws -> CollectorResponse {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return CollectorResponse(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

/// What a test needs of an HTTP response.
public struct CollectorResponse: Sendable {
    public let status: Int
    public let headers: HTTPHeaders
    public let body: String

    /// The first value of header `name` (case-insensitive).
    public func header(_ name: String) -> String? { headers.first(name: name) }
}

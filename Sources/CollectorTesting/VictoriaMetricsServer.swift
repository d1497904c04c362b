import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A real VictoriaMetrics single-node server for tests (Debian's `victoria-metrics`, the same
/// write and query API as the cluster's vminsert and vmselect), on a loopback port, with the
/// settings docs/cluster.md asks of a stats source: deduplication of identical samples
/// (`-dedup.minScrapeInterval=1ms`) and no hiding of the newest points (`-search.latencyOffset=0s`).
public final class VictoriaMetricsServer: @unchecked Sendable {
    public let port: Int
    public let dataDirectory: String
    private let logPath: String
    private var process: Process?

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The remote_write receiver.
    public var writeURL: String { baseURL + "/api/v1/write" }

    public static let executable = "/usr/bin/victoria-metrics"

    /// Starts a server on a free port with its data in `directory`.
    public init(directory: String) async throws {
        port = freeLoopbackPort()
        dataDirectory = (directory as NSString).appendingPathComponent("victoria-metrics-\(port)")
        logPath = (directory as NSString).appendingPathComponent("victoria-metrics-\(port).log")
        try await start()
    }

    /// Starts (again) on the same port and data.
    public func start() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw OpenSSLError(description: "\(Self.executable) is missing (scripts/install-deps.sh --test installs victoria-metrics)")
        }
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.executable)
        process.arguments = [
            "-storageDataPath", dataDirectory, "-httpListenAddr", "127.0.0.1:\(port)",
            "-dedup.minScrapeInterval=1ms", "-search.latencyOffset=0s", "-retentionPeriod=100y",
            "-search.disableCache", "-loggerLevel=WARN",
        ]
        let log = FileHandle(forWritingAtPath: logPath)
        log?.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try launch(process)
        self.process = process
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline, process.isRunning {
            if let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + "/health"), timeout: .seconds(2)),
               response.status.code == 200 {
                return
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        throw OpenSSLError(description: "victoria-metrics did not start: \(log_)")
    }

    private var log_: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Stops the server as an operator would (SIGTERM; it persists what it accepted first).
    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
        self.process = nil
    }

    /// Stops the server at once (SIGKILL). VictoriaMetrics keeps the newest accepted samples in
    /// memory for a few seconds, so this may lose some of them.
    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    /// Makes everything received so far searchable (VictoriaMetrics buffers new samples for
    /// about a second before queries see them).
    public func flush() async throws {
        _ = try await get("/internal/force_flush")
    }

    /// Stores samples in Prometheus' text format (`/api/v1/import/prometheus`, timestamps in
    /// milliseconds) directly, as a writer other than the collector would: the status code.
    public func importPrometheus(_ lines: String) async throws -> Int {
        var request = HTTPClientRequest(url: baseURL + "/api/v1/import/prometheus")
        request.method = .POST
        request.body = .bytes(ByteBuffer(string: lines))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        return Int(response.status.code)
    }

    /// Every raw sample of the series matching `selector` (`/api/v1/export`): labels, then
    /// (millisecond time, value) pairs in time order.
    public func export(_ selector: String) async throws -> [(labels: [String: String], samples: [(Int64, Double)])] {
        try await flush()
        let body = try await get("/api/v1/export?match%5B%5D=" + Self.encode(selector))
        return try body.split(separator: "\n").map { line in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw OpenSSLError(description: "victoria-metrics export answered: \(line.prefix(500))")
            }
            let labels = object["metric"] as? [String: String] ?? [:]
            let values = (object["values"] as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue ?? .nan }
            let times = (object["timestamps"] as? [Any] ?? []).map { ($0 as? NSNumber)?.int64Value ?? 0 }
            return (labels, zip(times, values).sorted { $0.0 < $1.0 })
        }
    }

    /// The body of `GET path` (a query string already encoded).
    public func get(_ path: String) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + path), timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        return String(buffer: body)
    }

    /// Read requests the server has answered on its query API (`vm_http_requests_total` of the
    /// `/api/v1/…` paths but writes and imports): what a stats source asked of it.
    public func queryRequests() async throws -> Double {
        var total = 0.0
        for line in try await get("/metrics").split(separator: "\n") where line.hasPrefix("vm_http_requests_total{") {
            guard let close = line.lastIndex(of: "}"), line[..<close].contains("/api/v1/"),
                  !line[..<close].contains("write"), !line[..<close].contains("import"),
                  let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { continue }
            total += value
        }
        return total
    }

    public static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    deinit {
        if let process, process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

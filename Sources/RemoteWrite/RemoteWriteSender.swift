import AsyncHTTPClient
import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import TimeSeries

/// One remote-write receiver: where to send and how to authenticate.
public struct RemoteWriteDestination: Sendable, Equatable {
    /// The URL requests go to (credentials removed).
    public var url: String
    /// The URL without credentials, query or fragment: the destination's name in the outbox,
    /// metrics and logs.
    public var name: String
    /// Headers sent with every request (`Authorization` from the URL's user info or a bearer
    /// token, and any extra headers), in order.
    public var headers: [(name: String, value: String)]

    public static func == (lhs: RemoteWriteDestination, rhs: RemoteWriteDestination) -> Bool {
        lhs.url == rhs.url && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses `text` (`http[s]://[user:password@]host[:port]/path`). Basic auth comes from the
    /// user info; `bearerToken` adds `Authorization: Bearer …`; `extraHeaders` are `Name: value`.
    public init(parsing text: String, bearerToken: String? = nil, extraHeaders: [String] = []) throws(RemoteWriteConfigurationError) {
        guard var components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else {
            throw RemoteWriteConfigurationError("remote-write-url must be an http or https URL, not \(Self.redacted(text))")
        }
        var headers: [(name: String, value: String)] = []
        if let user = components.user {
            let password = components.password ?? ""
            let pair = (user.removingPercentEncoding ?? user) + ":" + (password.removingPercentEncoding ?? password)
            headers.append(("Authorization", "Basic " + Data(pair.utf8).base64EncodedString()))
            if bearerToken != nil {
                throw RemoteWriteConfigurationError("remote-write-url \(Self.redacted(text)) has user info and a bearer token: use one")
            }
        }
        if let bearerToken {
            let token = bearerToken.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty, token.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
                throw RemoteWriteConfigurationError("the remote-write bearer token must be one printable word")
            }
            headers.append(("Authorization", "Bearer " + token))
        }
        for header in extraHeaders {
            guard let colon = header.firstIndex(of: ":") else {
                throw RemoteWriteConfigurationError("remote-write-header must be 'Name: value', not \(header)")
            }
            let name = header[..<colon].trimmingCharacters(in: .whitespaces)
            let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            let reserved = ["content-type", "content-encoding", "content-length", "x-prometheus-remote-write-version", "host"]
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                  !reserved.contains(name.lowercased()), !value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw RemoteWriteConfigurationError("remote-write-header \(name) is not a header the collector may set")
            }
            headers.append((name, value))
        }
        components.user = nil
        components.password = nil
        guard let url = components.string else {
            throw RemoteWriteConfigurationError("remote-write-url must be an http or https URL, not \(Self.redacted(text))")
        }
        self.url = url
        components.query = nil
        components.fragment = nil
        self.name = components.string ?? url
        self.headers = headers
    }

    /// `text` with any user info replaced by `***`, for messages.
    static func redacted(_ text: String) -> String {
        guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound <= at else { return text }
        return String(text[..<scheme.upperBound]) + "***" + String(text[at...])
    }
}

/// A remote-write setting that cannot be used; the message names it.
public struct RemoteWriteConfigurationError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// How a sender batches and retries (flags `--remote-write-*`).
public struct RemoteWriteSettings: Sendable {
    /// Most samples per request (the entries of one write are never split).
    public var maxSamplesPerRequest = 20_000
    /// Time one request may take.
    public var timeout: Duration = .seconds(30)
    /// First wait after a retryable failure; doubled each time up to `maxBackoff`.
    public var minBackoff: Duration = .milliseconds(100)
    public var maxBackoff: Duration = .seconds(10)
    /// How long after its end a day is sealed by the readers of the TSDB (`--stats-seal-after`):
    /// a request with samples of a day older than that carries its ``LateDayMark``. `nil`: none.
    public var lateAfter: TimeInterval? = nil

    /// The defaults, as documented on each property.
    public init() {}
}

/// What the receiver's answer means for a batch (remote_write 1.0 spec, "Retries & Backoff").
public enum RemoteWriteOutcome: String, Sendable, CaseIterable {
    /// 2xx: stored.
    case sent
    /// 5xx, 429 or no answer (connection refused, reset, timeout): sent again after a backoff.
    case retried
    /// Any other 4xx: the receiver will never take it; counted and skipped.
    case dropped

    /// The outcome of HTTP status `code`.
    public static func classify(status code: Int) -> RemoteWriteOutcome {
        switch code {
        case 200..<300: return .sent
        case 429, 500..<600: return .retried
        default: return .dropped
        }
    }
}

/// Forwards the outbox to one destination: reads entries after its cursor, sends them as one
/// remote_write request, and moves the cursor only when the destination answered 2xx (or
/// refused the batch for good with another 4xx, which is counted as dropped). Retryable failures
/// wait with capped exponential backoff (or the receiver's `Retry-After`, within the cap) and
/// send the same entries again; a restart resumes from the cursor.
public final class RemoteWriteSender: Service, Sendable {
    private let destination: RemoteWriteDestination
    private let outbox: RemoteOutbox
    private let index: SeriesIndex
    private let client: HTTPClient
    private let settings: RemoteWriteSettings
    private let metrics: RemoteWriteMetrics.Destination
    private let logger: Logger
    private let clock: @Sendable () -> Date

    public init(destination: RemoteWriteDestination, outbox: RemoteOutbox, index: SeriesIndex, client: HTTPClient,
                settings: RemoteWriteSettings = RemoteWriteSettings(), metrics: RemoteWriteMetrics, logger: Logger,
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.destination = destination
        self.outbox = outbox
        self.index = index
        self.client = client
        self.settings = settings
        self.metrics = metrics.destination(destination.name)
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        var encoder = RemoteWriteEncoder(index: index)
        var backoff = settings.minBackoff
        var failingSince: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let entries: [RemoteOutbox.Entry]
            do {
                entries = try outbox.entries(for: destination.name, maxSamples: settings.maxSamplesPerRequest)
            } catch {
                logger.error("remote write: cannot read the outbox", metadata: ["destination": "\(destination.name)", "error": "\(error)"])
                guard await pause(settings.maxBackoff) else { break }
                continue
            }
            updateGauges(oldest: entries.first)
            guard !entries.isEmpty else {
                let cursor = outbox.cursor(destination.name) ?? 0
                let woken = await cancelWhenGracefulShutdownOrFalse { await self.outbox.waitForEntries(after: cursor) }
                if !woken { break }
                continue
            }
            var encoded: RemoteWriteEncoder.Encoded
            do {
                encoded = try encoder.encode(entries)
            } catch {
                // Serialization of plain strings and numbers does not fail; if it did, the entries
                // could never be sent.
                logger.error("remote write: cannot encode a batch; dropped", metadata: ["destination": "\(destination.name)", "error": "\(error)"])
                metrics.samples[.dropped]?.increment(by: entries.reduce(0) { $0 + $1.samples })
                try? outbox.acknowledge(destination.name, entries)
                continue
            }
            // The same batch until the destination takes it or refuses it for good.
            while true {
                // Samples of a day readers may have sealed go with the mark of that day.
                if let late = lateDay(of: encoded), encoded.markedDay != late.day {
                    encoded = (try? encoder.encode(entries, lateDay: late)) ?? encoded
                }
                let (outcome, detail, retryAfter) = await send(encoded)
                metrics.samples[outcome]?.increment(by: encoded.samples)
                if outcome == .retried {
                    if failingSince == nil {
                        failingSince = .now
                        logger.warning("remote write failing; retrying with backoff", metadata: ["destination": "\(destination.name)", "reason": "\(detail)"])
                    }
                    let wait = min(settings.maxBackoff, max(backoff, retryAfter ?? .zero))
                    backoff = min(settings.maxBackoff, backoff * 2)
                    updateGauges(oldest: entries.first)
                    guard await pause(wait) else { return }
                    continue
                }
                if outcome == .dropped {
                    logger.error("remote write refused a batch for good; dropped", metadata: [
                        "destination": "\(destination.name)", "samples": "\(encoded.samples)", "reason": "\(detail)",
                    ])
                }
                if let since = failingSince {
                    logger.info("remote write recovered", metadata: ["destination": "\(destination.name)", "failed_for": "\(ContinuousClock.now - since)"])
                    failingSince = nil
                }
                backoff = settings.minBackoff
                do {
                    try outbox.acknowledge(destination.name, entries)
                } catch {
                    // The cursor did not move: the batch goes again (the receiver drops the copy).
                    logger.error("remote write: cannot move the cursor", metadata: ["destination": "\(destination.name)", "error": "\(error)"])
                    guard await pause(settings.maxBackoff) else { return }
                }
                break
            }
        }
    }

    /// The oldest day of `encoded` when it ended at least `settings.lateAfter` ago (readers
    /// may have sealed it), with the time now in milliseconds.
    func lateDay(of encoded: RemoteWriteEncoder.Encoded) -> (day: Int64, atMillis: Int64)? {
        guard let lateAfter = settings.lateAfter, let oldest = encoded.oldestMillis else { return nil }
        let day = oldest >= 0 ? oldest / 86_400_000 : (oldest - 86_399_999) / 86_400_000
        let now = clock().timeIntervalSince1970
        guard Double(day + 1) * 86_400 + lateAfter <= now else { return nil }
        return (day, Int64((now * 1000).rounded(.down)))
    }

    /// Sends one request: the outcome, a short reason for logs, and the receiver's `Retry-After`.
    private func send(_ encoded: RemoteWriteEncoder.Encoded) async -> (RemoteWriteOutcome, String, Duration?) {
        var request = HTTPClientRequest(url: destination.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-protobuf")
        request.headers.add(name: "Content-Encoding", value: "snappy")
        request.headers.add(name: "X-Prometheus-Remote-Write-Version", value: "0.1.0")
        request.headers.add(name: "User-Agent", value: "flashback-collector")
        for header in destination.headers { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: encoded.body))
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(request, timeout: TimeAmount(settings.timeout))
            let code = Int(response.status.code)
            // The receiver's reason, bounded: it goes into a log line.
            var body = try await response.body.collect(upTo: 1 << 20)
            let reason = body.readString(length: min(body.readableBytes, 256)) ?? ""
            metrics.record(status: code, duration: ContinuousClock.now - started)
            let retryAfter = response.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds(max(0, min($0, 3600))) }
            return (RemoteWriteOutcome.classify(status: code), "HTTP \(code) \(reason)", retryAfter)
        } catch {
            metrics.record(status: nil, duration: ContinuousClock.now - started)
            return (.retried, "\(error)", nil)
        }
    }

    private func updateGauges(oldest: RemoteOutbox.Entry?) {
        let backlog = outbox.backlog(destination.name)
        metrics.backlogBytes.record(backlog.bytes)
        metrics.backlogSamples.record(backlog.samples)
        let lag = oldest.map { max(0, clock().timeIntervalSince1970 - Double($0.writtenAtMillis) / 1000) } ?? 0
        metrics.lagSeconds.record(lag)
    }

    /// Sleeps `duration`; `false` when the service is shutting down (or cancelled) meanwhile.
    private func pause(_ duration: Duration) async -> Bool {
        do {
            try await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
            return !Task.isShuttingDownGracefully
        } catch {
            return false
        }
    }

    private func cancelWhenGracefulShutdownOrFalse(_ body: @escaping @Sendable () async -> Bool) async -> Bool {
        await cancelWhenGracefulShutdown { await body() }
    }
}

/// The senders' self-monitoring: per destination (the operator's own URLs, so a bounded set).
public final class RemoteWriteMetrics: Sendable {
    /// `# HELP` texts of these metrics.
    public static let helps: [String: String] = [
        "flashback_remote_write_samples_total": "Samples per remote-write destination by outcome: sent (2xx), retried (5xx, 429, no answer; sent again), dropped (other 4xx).",
        "flashback_remote_write_requests_total": "Remote-write requests by destination and answer (2xx, 4xx, 429, 5xx, error for no answer).",
        "flashback_remote_write_request_duration_seconds": "Time of one remote-write request.",
        "flashback_remote_write_backlog_bytes": "Bytes queued in the outbox for a destination and not yet accepted by it.",
        "flashback_remote_write_backlog_samples": "Samples queued in the outbox for a destination and not yet accepted by it.",
        "flashback_remote_write_backlog_max_bytes": "Backlog at which writes are refused with 503 (--remote-write-max-backlog).",
        "flashback_remote_write_lag_seconds": "Age of the oldest sample a destination has not accepted yet (0 when caught up).",
    ]

    /// The metrics of one destination.
    public struct Destination: Sendable {
        let samples: [RemoteWriteOutcome: Counter]
        let requests: [String: Counter]
        let duration: CoreMetrics.Timer
        let backlogBytes: Gauge
        let backlogSamples: Gauge
        let lagSeconds: Gauge

        func record(status: Int?, duration elapsed: Duration) {
            let key: String
            switch status {
            case nil: key = "error"
            case 429: key = "429"
            case let code? where (200..<300).contains(code): key = "2xx"
            case let code? where (400..<500).contains(code): key = "4xx"
            case let code? where (500..<600).contains(code): key = "5xx"
            default: key = "other"
            }
            requests[key]?.increment()
            duration.recordNanoseconds(TimeAmount(elapsed).nanoseconds)
        }
    }

    private let factory: any MetricsFactory
    public let maxBacklogBytes: Gauge

    public init(maxBacklogBytes: Int, factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.maxBacklogBytes = Gauge(label: "flashback_remote_write_backlog_max_bytes", factory: factory)
        self.maxBacklogBytes.record(maxBacklogBytes)
    }

    /// Creates the metrics of `name` (the same objects each time: the factory deduplicates).
    public func destination(_ name: String) -> Destination {
        let dimensions = [("destination", name)]
        return Destination(
            samples: Dictionary(uniqueKeysWithValues: RemoteWriteOutcome.allCases.map { outcome in
                (outcome, Counter(label: "flashback_remote_write_samples_total", dimensions: dimensions + [("outcome", outcome.rawValue)], factory: factory))
            }),
            requests: Dictionary(uniqueKeysWithValues: ["2xx", "4xx", "429", "5xx", "error", "other"].map { code in
                (code, Counter(label: "flashback_remote_write_requests_total", dimensions: dimensions + [("code", code)], factory: factory))
            }),
            duration: CoreMetrics.Timer(label: "flashback_remote_write_request_duration_seconds", dimensions: dimensions, factory: factory),
            backlogBytes: Gauge(label: "flashback_remote_write_backlog_bytes", dimensions: dimensions, factory: factory),
            backlogSamples: Gauge(label: "flashback_remote_write_backlog_samples", dimensions: dimensions, factory: factory),
            lagSeconds: Gauge(label: "flashback_remote_write_lag_seconds", dimensions: dimensions, factory: factory))
    }
}

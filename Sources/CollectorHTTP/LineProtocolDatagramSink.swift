import Crypto
import Foundation
import Ingest
import Logging
import NIOCore
import Registry
import Synchronization
import TimeSeries

/// How UDP datagrams are authenticated (`--udp-auth`).
public enum UDPAuthMode: String, Sendable, CaseIterable {
    /// Every datagram starts with `#fb1 <nodeId> <unix-seconds> <base64 HMAC-SHA256(nodeToken, rest)>`.
    case hmac
    /// Datagrams without the header are accepted as public data (trusted networks only); a
    /// datagram that has the header is still verified.
    case none
}

/// Line protocol over UDP: verifies the `#fb1` header, parses the rest and stores it.
///
/// UDP cannot answer, so every refusal is counted by reason (``counts``) and logged at most once
/// per 10 s. Storage is the same write path as HTTP, WAL on.
public final class LineProtocolDatagramSink: DatagramSink {
    /// Refusal and acceptance counters, by reason.
    public enum Outcome: String, Sendable, CaseIterable {
        case accepted
        case missingHeader = "missing_header"
        case badHeader = "bad_header"
        case unknownNode = "unknown_node"
        case staleTimestamp = "stale_timestamp"
        case badSignature = "bad_signature"
        case badLines = "bad_lines"
        case storeFailed = "store_failed"
    }

    private let store: TimeSeriesStore
    private let registry: NodeRegistry
    private let mode: UDPAuthMode
    private let window: TimeInterval
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let counters = Mutex<[Outcome: Int]>([:])
    private let lastLog = Mutex<Date>(.distantPast)
    private let seriesSections: SeriesSectionCache
    private let metrics: IngestMetrics

    public init(store: TimeSeriesStore, registry: NodeRegistry, mode: UDPAuthMode, window: TimeInterval = 300,
                now: @escaping @Sendable () -> Date = { Date() }, logger: Logger, seriesSections: SeriesSectionCache = SeriesSectionCache(),
                metrics: IngestMetrics = IngestMetrics()) {
        self.seriesSections = seriesSections
        self.metrics = metrics
        self.store = store
        self.registry = registry
        self.mode = mode
        self.window = window
        self.now = now
        self.logger = logger
    }

    /// Datagrams per outcome so far.
    public var counts: [Outcome: Int] {
        counters.withLock { $0 }
    }

    private func count(_ outcome: Outcome, _ detail: String? = nil) {
        counters.withLock { $0[outcome, default: 0] += 1 }
        metrics.record(datagram: outcome)
        guard let detail else { return }
        let current = now()
        let shouldLog = lastLog.withLock { last in
            if current.timeIntervalSince(last) >= 10 { last = current; return true }
            return false
        }
        if shouldLog { logger.warning("UDP datagram refused", metadata: ["reason": "\(outcome.rawValue)", "detail": "\(detail)"]) }
    }

    public func receive(_ payload: ByteBuffer, from sender: SocketAddress) async {
        payload.withUnsafeReadableBytes { handle($0) }
    }

    /// Handles one datagram's bytes (the socket-free entry point, also used by tests).
    public func handle(_ bytes: UnsafeRawBufferPointer) {
        var body = bytes
        var node: BridgeNode?
        var firstLine = 1
        let header = UnsafeRawBufferPointer(rebasing: bytes.prefix(5))
        if header.elementsEqual("#fb1 ".utf8) {
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return count(.badHeader, "header without a body") }
            let fields = String(decoding: bytes[0..<newline], as: UTF8.self).split(separator: " ")
            guard fields.count == 4, let seconds = Int64(fields[2]), let mac = Data(base64Encoded: String(fields[3])) else {
                return count(.badHeader, "header is not '#fb1 <nodeId> <unix-seconds> <base64 HMAC>'")
            }
            guard let known = registry.node(id: String(fields[1])), let token = registry.credential(nodeID: known.id) else {
                return count(.unknownNode, "unknown or revoked node")
            }
            guard abs(now().timeIntervalSince1970 - TimeInterval(seconds)) <= window else {
                return count(.staleTimestamp, "header time outside ±\(Int(window)) s")
            }
            body = UnsafeRawBufferPointer(rebasing: bytes[(newline + 1)...])
            guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: body, using: SymmetricKey(data: Array(token.utf8))) else {
                return count(.badSignature, "HMAC does not match")
            }
            node = known
            firstLine = 2
        } else if mode == .hmac {
            return count(.missingHeader, "datagram without '#fb1' header")
        }
        let parsed = LineProtocolParser(seriesCache: seriesSections).parse(body, firstLine: firstLine)
        let receivedAt = now()
        let nowNanos = Int64(receivedAt.timeIntervalSince1970 * 1e9)
        let (points, mappingErrors) = SeriesPointMapping.map(parsed.points, organization: node?.organization ?? "", node: node, nowNanos: nowNanos)
        let lineErrors = parsed.errors + mappingErrors
        let refusedLines = lineErrors.count
        do {
            let started = ContinuousClock.now
            let outcome = try store.write(points, now: receivedAt, sync: false)
            metrics.record(.udp, outcome: outcome, lineErrors: lineErrors, duration: ContinuousClock.now - started)
            if let node { registry.markSeen(nodeID: node.id) }
            if refusedLines > 0 || outcome.rejectedTotal > 0 {
                count(.badLines, (parsed.errors + mappingErrors).first?.description ?? outcome.firstRejection)
            } else {
                count(.accepted)
            }
        } catch {
            metrics.recordWriteFailure(.udp)
            count(.storeFailed, "\(error)")
        }
    }
}

import CollectorModel
import Crypto
import Foundation
import Ingest
import IngestMapping
import Logging
import NIOCore
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

/// What became of a datagram: a metric label with a fixed set of values.
public enum DatagramOutcome: String, Sendable, CaseIterable {
    case accepted
    case missingHeader = "missing_header"
    case badHeader = "bad_header"
    case unknownNode = "unknown_node"
    case staleTimestamp = "stale_timestamp"
    case badSignature = "bad_signature"
    case badLines = "bad_lines"
    case storeFailed = "store_failed"
}

/// Line protocol over UDP: verifies the `#fb1` header, parses the rest and stores it through the
/// ingest writer (the same write path as HTTP, WAL on).
///
/// UDP cannot answer, so every refusal is counted by reason (``counts``) and logged at most once
/// per 10 s.
public final class LineProtocolDatagramSink: DatagramSink {
    /// What became of a datagram.
    public typealias Outcome = DatagramOutcome

    private let writer: IngestWriter
    private let mode: UDPAuthMode
    private let window: TimeInterval
    private let logger: Logger
    private let counters = Mutex<[Outcome: Int]>([:])
    private let lastLog = Mutex<Date>(.distantPast)
    /// Organization of datagrams without a header in `none` mode ("" = public data).
    private let unsignedOrganization: String

    /// A sink storing through `writer`; headers older or newer than `window` seconds are refused.
    public init(writer: IngestWriter, mode: UDPAuthMode, window: TimeInterval = 300, logger: Logger, unsignedOrganization: String = "") {
        self.writer = writer
        self.unsignedOrganization = unsignedOrganization
        self.mode = mode
        self.window = window
        self.logger = logger
    }

    /// Datagrams per outcome so far.
    public var counts: [Outcome: Int] {
        counters.withLock { $0 }
    }

    private func count(_ outcome: Outcome, _ detail: String? = nil) {
        counters.withLock { $0[outcome, default: 0] += 1 }
        writer.metrics.record(datagram: outcome)
        guard let detail else { return }
        logRateLimited("UDP datagram refused", reason: outcome.rawValue, detail: detail)
    }

    private func logRateLimited(_ message: Logger.Message, reason: String, detail: String) {
        let current = writer.now()
        let shouldLog = lastLog.withLock { last in
            if current.timeIntervalSince(last) >= 10 { last = current; return true }
            return false
        }
        if shouldLog { logger.warning(message, metadata: ["reason": "\(reason)", "detail": "\(detail)"]) }
    }

    public func receive(_ datagrams: [ByteBuffer]) async {
        handle(batch: datagrams)
    }

    /// Handles one datagram's bytes (the socket-free entry point, also used by tests).
    public func handle(_ bytes: UnsafeRawBufferPointer) {
        var batch = Batch()
        prepare(bytes, into: &batch)
        commit(batch)
    }

    /// Handles the datagrams of one read burst: each is checked and parsed on its own, then all
    /// their samples are stored with **one** write.
    public func handle(batch datagrams: [ByteBuffer]) {
        var batch = Batch()
        for datagram in datagrams {
            datagram.withUnsafeReadableBytes { prepare($0, into: &batch) }
        }
        commit(batch)
    }

    /// Samples of accepted datagrams, waiting for one store write.
    struct Batch {
        var mapped = SeriesMemo.Mapped()
        /// Per datagram with a body: its first refused line, if any.
        var outcomes: [String?] = []
        var nodes: Set<String> = []
    }

    private func prepare(_ bytes: UnsafeRawBufferPointer, into batch: inout Batch) {
        var body = bytes
        var signer: DatagramSigner?
        var firstLine = 1
        switch DatagramHeader.parse(bytes) {
        case .malformed(let reason):
            return count(.badHeader, reason)
        case .header(let header):
            guard let known = writer.nodes.datagramSigner(nodeID: header.nodeID) else {
                return count(.unknownNode, "unknown or revoked node")
            }
            guard abs(writer.now().timeIntervalSince1970 - TimeInterval(header.seconds)) <= window else {
                return count(.staleTimestamp, "header time outside ±\(Int(window)) s")
            }
            body = UnsafeRawBufferPointer(rebasing: bytes[header.bodyOffset...])
            guard HMAC<SHA256>.isValidAuthenticationCode(header.mac, authenticating: body, using: SymmetricKey(data: Array(known.key.utf8))) else {
                return count(.badSignature, "HMAC does not match")
            }
            signer = known
            firstLine = 2
        case .absent:
            if mode == .hmac { return count(.missingHeader, "datagram without '#fb1' header") }
        }
        let parsed = writer.parser().parse(body, firstLine: firstLine)
        var mapped = writer.memo.batch(parsed, organization: signer?.organization ?? unsignedOrganization, node: signer?.nodeID,
                                       nowNanos: Int64(saturatingNanosecondsOf: writer.now()))
        mapped.errors = parsed.errors + mapped.errors
        batch.outcomes.append(mapped.errors.min { $0.line < $1.line }?.description)
        batch.mapped.append(mapped)
        if let signer { batch.nodes.insert(signer.nodeID) }
    }

    private func commit(_ batch: Batch) {
        guard !batch.outcomes.isEmpty else { return }
        do {
            let outcome = try writer.commit(batch.mapped, now: writer.now(), protocol: .udp, sync: false)
            for node in batch.nodes { writer.nodes.markSeen(nodeID: node, latencyMs: nil) }
            for refused in batch.outcomes {
                if let refused { count(.badLines, refused) } else { count(.accepted) }
            }
            // Samples refused by the store (too old, future, series limit) are counted by reason
            // in flashback_ingest_samples_rejected_total; log the first for the operator.
            if let first = outcome.firstRejection { logRateLimited("UDP samples refused", reason: "store", detail: first) }
        } catch {
            for _ in batch.outcomes { count(.storeFailed, "\(error)") }
        }
    }
}

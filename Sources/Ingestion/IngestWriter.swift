import CollectorModel
import Foundation
import Ingest
import IngestMapping
import TimeSeries

/// Who writes samples, and for which organization.
public enum SampleWriter: Sendable, Equatable {
    /// A bridge node with its node token: its lines get its `node` tag.
    case node(id: String, organization: String)
    /// An organization's administrator token: lines are stored as sent.
    case organization(String)

    /// The organization the samples are stored for (`""` for public nodes).
    public var organization: String {
        switch self {
        case .node(_, let organization): return organization
        case .organization(let organization): return organization
        }
    }

    /// The writing node's id, if a node writes.
    public var nodeID: String? {
        if case .node(let id, _) = self { return id }
        return nil
    }
}

/// What the ingest path needs from the node registry: the key that signs a node's datagrams,
/// and "this node was heard from". The registry conforms in the wiring, so that this layer does
/// not depend on how (or where) nodes are stored.
public protocol IngestNodeDirectory: Sendable {
    /// The node with `nodeID` and its datagram key (its node token), or `nil` when the node is
    /// unknown or its token is revoked.
    func datagramSigner(nodeID: String) -> DatagramSigner?
    /// Records that the node reported now (liveness), with the mean latency of the report if any.
    func markSeen(nodeID: String, latencyMs: Double?)
}

/// A node allowed to send datagrams, and the HMAC key its `#fb1` headers are made with.
public struct DatagramSigner: Sendable {
    public var nodeID: String
    public var organization: String
    public var key: String

    /// A `DatagramSigner` from its parts.
    public init(nodeID: String, organization: String, key: String) {
        self.nodeID = nodeID
        self.organization = organization
        self.key = key
    }
}

/// Why an ingest write was refused before the store took it.
public enum IngestError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The write path is saturated (bytes in flight, or the store's backlog): retry shortly.
    case saturated(String)
    /// `Content-Encoding` other than gzip or identity.
    case unsupportedEncoding(String)
    /// The body (after decompression) is larger than the limit in bytes.
    case tooLarge(limit: Int)
    /// A malformed body or parameter, described for the client.
    case invalid(String)

    public var description: String {
        switch self {
        case .saturated(let detail): return "the write path is saturated (\(detail)); retry shortly"
        case .unsupportedEncoding(let encoding): return "Content-Encoding \(encoding) is not supported; send gzip or an uncompressed body"
        case .tooLarge(let limit): return "decompressed request body is larger than \(limit) bytes"
        case .invalid(let message): return message
        }
    }
}

/// The one way samples enter the store, for every protocol (HTTP `/write`, UDP, `/status`,
/// `/stats/report`): commit with the WAL on, time the write, count it by outcome, and mark the
/// writing node as heard from.
public struct IngestWriter: Sendable {
    public let store: TimeSeriesStore
    /// fsync the WAL before a write returns (`--sync-writes`; UDP never waits for it).
    public let syncWrites: Bool
    public let metrics: IngestMetrics
    public let memo: SeriesMemo
    public let lineLimits: LineLimits
    public let nodes: any IngestNodeDirectory
    public let now: @Sendable () -> Date

    /// The writer into `store`; `nodes` answers datagram keys and takes liveness, `memo` is shared by every parse (one per process).
    public init(store: TimeSeriesStore, nodes: any IngestNodeDirectory, syncWrites: Bool = false, metrics: IngestMetrics = IngestMetrics(),
                memo: SeriesMemo = SeriesMemo(), lineLimits: LineLimits = LineLimits(), now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.nodes = nodes
        self.syncWrites = syncWrites
        self.metrics = metrics
        self.memo = memo
        self.lineLimits = lineLimits
        self.now = now
    }

    /// The parser for line protocol with the configured limits and the shared section cache.
    /// `followsSenderOrder`: for whole bodies (see ``LineProtocolParser/followsSenderOrder``).
    public func parser(precision: TimestampPrecision = .nanoseconds, followsSenderOrder: Bool = false) -> LineProtocolParser {
        LineProtocolParser(precision: precision, maxLineLength: lineLimits.maxLineLength, maxTags: lineLimits.maxTagsPerSeries,
                           seriesCache: memo.sections, followsSenderOrder: followsSenderOrder)
    }

    /// What a line-protocol write did: the store's outcome and the refused lines, by line number.
    public struct LinesOutcome: Sendable {
        public var stored: WriteOutcome
        public var lineErrors: [LineError]
    }

    /// Parses `body` as line protocol and stores its good lines for `writer`.
    public func writeLines(_ body: UnsafeRawBufferPointer, precision: TimestampPrecision, writer: SampleWriter,
                           protocol proto: IngestProtocol = .http) throws -> LinesOutcome {
        let parsed = parser(precision: precision, followsSenderOrder: true).parse(body)
        let receivedAt = now()
        var mapped = memo.batch(parsed, organization: writer.organization, node: writer.nodeID, nowNanos: Int64(saturatingNanosecondsOf: receivedAt))
        mapped.errors = parsed.errors + mapped.errors
        mapped.errors.sort { $0.line < $1.line }
        let outcome = try commit(mapped, now: receivedAt, protocol: proto, sync: syncWrites)
        if let node = writer.nodeID { nodes.markSeen(nodeID: node, latencyMs: nil) }
        return LinesOutcome(stored: outcome, lineErrors: mapped.errors)
    }

    /// Stores `points` (node reports) and counts them under `proto`; marks `node` as heard from.
    public func write(_ points: [SeriesPoint], protocol proto: IngestProtocol, node: String?, latencyMs: Double? = nil) throws -> WriteOutcome {
        let outcome = try commit(SeriesMemo.Mapped(batch: SeriesBatch(points)), now: now(), protocol: proto, sync: syncWrites)
        if let node { nodes.markSeen(nodeID: node, latencyMs: latencyMs) }
        return outcome
    }

    /// Commits `mapped`, tells the memo the ids of its new series, and counts the write
    /// (samples by outcome, refused lines, duration). A full backlog is ``IngestError/saturated(_:)``.
    func commit(_ mapped: SeriesMemo.Mapped, now: Date, protocol proto: IngestProtocol, sync: Bool) throws -> WriteOutcome {
        let started = ContinuousClock.now
        do {
            let outcome = try store.write(mapped.batch, now: now, sync: sync, seriesResolved: mapped.remember)
            metrics.record(proto, outcome: outcome, lineErrors: mapped.errors, duration: ContinuousClock.now - started)
            return outcome
        } catch let error as TimeSeriesError {
            metrics.recordWriteFailure(proto)
            switch error {
            case .backlogged, .remoteBacklogFull: throw IngestError.saturated("\(error)")
            case .corruptLogEntry: throw error
            }
            throw error
        } catch {
            metrics.recordWriteFailure(proto)
            throw error
        }
    }
}

extension IngestWriter {
    /// One bucket's entry of a node status report, checked.
    public struct StatusEntry: Sendable {
        public var bucket: String
        /// As ``NodeStatusValue`` stores it.
        public var status: Double
        public var latencyMs: Double?
        /// `nil`: the time of receipt.
        public var time: UnixTime?

        /// A `StatusEntry` from its parts.
        public init(bucket: String, status: Double, latencyMs: Double?, time: UnixTime?) {
            self.bucket = bucket
            self.status = status
            self.latencyMs = latencyMs
            self.time = time
        }
    }

    /// Stores a node's status report as `node_status` samples (one series per bucket) and marks
    /// the node as heard from with the report's mean latency.
    public func writeStatus(node: String, organization: String, entries: [StatusEntry]) throws -> WriteOutcome {
        let nowNanos = Int64(saturatingNanosecondsOf: now())
        let points = entries.map { entry in
            var fields: [(name: String, value: Double)] = [(name: FleetSchema.NodeStatus.status, value: entry.status)]
            if let latency = entry.latencyMs { fields.append((name: FleetSchema.NodeStatus.latency, value: latency)) }
            return SeriesPoint(organization: organization, measurement: FleetSchema.NodeStatus.measurement,
                               tags: [(key: FleetSchema.Tag.bucket, value: entry.bucket), (key: FleetSchema.Tag.node, value: node)],
                               fields: fields, timestamp: entry.time?.nanoseconds ?? nowNanos)
        }
        let latencies = entries.compactMap(\.latencyMs)
        return try write(points, protocol: .status, node: node,
                         latencyMs: latencies.isEmpty ? nil : latencies.reduce(0, +) / Double(latencies.count))
    }

    /// One traffic record of a report, checked.
    public struct TrafficEntry: Sendable {
        /// The record's tags (bucket, repo, host), without the node tag.
        public var tags: [(key: String, value: String)]
        public var fields: [(name: String, value: Double)]
        /// `nil`: the time of receipt.
        public var time: UnixTime?

        /// A `TrafficEntry` from its parts.
        public init(tags: [(key: String, value: String)], fields: [(name: String, value: Double)], time: UnixTime?) {
            self.tags = tags
            self.fields = fields
            self.time = time
        }
    }

    /// Stores traffic records as `bucket_traffic` samples for `writer` (a node's records get its
    /// `node` tag).
    public func writeTraffic(_ entries: [TrafficEntry], writer: SampleWriter) throws -> WriteOutcome {
        let nowNanos = Int64(saturatingNanosecondsOf: now())
        let points = entries.map { entry in
            var tags = entry.tags
            if let node = writer.nodeID { tags.append((key: FleetSchema.Tag.node, value: node)) }
            tags.sort { $0.key < $1.key }
            return SeriesPoint(organization: writer.organization, measurement: FleetSchema.BucketTraffic.measurement, tags: tags,
                               fields: entry.fields, timestamp: entry.time?.nanoseconds ?? nowNanos)
        }
        return try write(points, protocol: .report, node: writer.nodeID)
    }
}

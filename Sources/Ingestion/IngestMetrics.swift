import CoreMetrics
import Ingest
import TimeSeries

/// Where samples come from: a metric label with a fixed set of values.
public enum IngestProtocol: String, Sendable, CaseIterable {
    /// `POST /write`, `POST /api/v2/write`.
    case http
    /// Line protocol datagrams.
    case udp
    /// `POST /status`, `POST /node/status`.
    case status
    /// `POST /stats/report`.
    case report
}

/// The ingest path's self-monitoring, through swift-metrics (exported by the Prometheus issue).
///
/// Labels are only the protocol, a reason from a fixed list, or an outcome — never a client
/// string — so the number of series these metrics create is fixed. Every metric is created up
/// front; recording is a lock-free counter update. The factory is injected so tests read their
/// own metrics without touching the process-wide `MetricsSystem`.
public final class IngestMetrics: Sendable {
    private let received: [IngestProtocol: Counter]
    private let stored: [IngestProtocol: Counter]
    private let rejectedSamples: [IngestProtocol: [SampleRejection: Counter]]
    private let rejectedLines: [IngestProtocol: [LineErrorReason: Counter]]
    private let throttled: [IngestProtocol: Counter]
    private let writeDuration: [IngestProtocol: Timer]
    private let writeFailures: [IngestProtocol: Counter]
    private let datagrams: [DatagramOutcome: Counter]
    /// Datagrams the kernel dropped on the UDP socket (receive buffer full).
    package let datagramsDropped: Counter
    package let series: Gauge
    package let pendingSamples: Gauge
    package let flushes: Counter
    package let flushFailures: Counter
    package let flushDuration: Timer
    package let sealedDayRecords: Counter

    /// `# HELP` texts of these metrics.
    public static let helps: [String: String] = [
        "flashback_ingest_samples_received_total": "Field samples received, by protocol.",
        "flashback_ingest_samples_stored_total": "Field samples committed (WAL on), by protocol.",
        "flashback_ingest_samples_rejected_total": "Field samples refused, by protocol and reason (too_old, too_far_in_future, series_limit, field_limit, day_sealed).",
        "flashback_ingest_lines_rejected_total": "Line-protocol lines refused, by protocol and reason.",
        "flashback_ingest_requests_throttled_total": "Writes refused with 503 because the write path was saturated.",
        "flashback_ingest_write_duration_seconds": "Time to validate, log and buffer one write batch (one request or UDP read burst).",
        "flashback_ingest_write_failures_total": "Write batches that failed in the store.",
        "flashback_udp_datagrams_total": "UDP datagrams by outcome (accepted, bad_lines, missing_header, bad_header, unknown_node, stale_timestamp, bad_signature, store_failed).",
        "flashback_udp_datagrams_dropped_total": "UDP datagrams the kernel dropped because the receive buffer was full.",
        "flashback_series": "Series in the index, all organizations.",
        "flashback_ingest_pending_samples": "Accepted samples waiting in memory (and in the ingest log) for the next flush.",
        "flashback_ingest_flushes_total": "Flushes of the in-memory buffer into sample blocks.",
        "flashback_ingest_flush_failures_total": "Flushes that failed (retried at the next tick).",
        "flashback_ingest_flush_duration_seconds": "Time of one flush.",
        "flashback_day_records_sealed_total": "Day rollup records sealed.",
    ]

    /// Creates every metric up front in `factory` (the process-wide one by default).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        func perProtocol<T>(_ make: (IngestProtocol) -> T) -> [IngestProtocol: T] {
            Dictionary(uniqueKeysWithValues: IngestProtocol.allCases.map { ($0, make($0)) })
        }
        received = perProtocol { Counter(label: "flashback_ingest_samples_received_total", dimensions: [("protocol", $0.rawValue)], factory: factory) }
        stored = perProtocol { Counter(label: "flashback_ingest_samples_stored_total", dimensions: [("protocol", $0.rawValue)], factory: factory) }
        rejectedSamples = perProtocol { proto in
            Dictionary(uniqueKeysWithValues: SampleRejection.allCases.map { reason in
                (reason, Counter(label: "flashback_ingest_samples_rejected_total", dimensions: [("protocol", proto.rawValue), ("reason", reason.rawValue)], factory: factory))
            })
        }
        rejectedLines = perProtocol { proto in
            Dictionary(uniqueKeysWithValues: LineErrorReason.allCases.map { reason in
                (reason, Counter(label: "flashback_ingest_lines_rejected_total", dimensions: [("protocol", proto.rawValue), ("reason", reason.rawValue)], factory: factory))
            })
        }
        throttled = perProtocol { Counter(label: "flashback_ingest_requests_throttled_total", dimensions: [("protocol", $0.rawValue)], factory: factory) }
        writeDuration = perProtocol { Timer(label: "flashback_ingest_write_duration_seconds", dimensions: [("protocol", $0.rawValue)], factory: factory) }
        writeFailures = perProtocol { Counter(label: "flashback_ingest_write_failures_total", dimensions: [("protocol", $0.rawValue)], factory: factory) }
        datagrams = Dictionary(uniqueKeysWithValues: DatagramOutcome.allCases.map { outcome in
            (outcome, Counter(label: "flashback_udp_datagrams_total", dimensions: [("outcome", outcome.rawValue)], factory: factory))
        })
        datagramsDropped = Counter(label: "flashback_udp_datagrams_dropped_total", factory: factory)
        series = Gauge(label: "flashback_series", factory: factory)
        pendingSamples = Gauge(label: "flashback_ingest_pending_samples", factory: factory)
        flushes = Counter(label: "flashback_ingest_flushes_total", factory: factory)
        flushFailures = Counter(label: "flashback_ingest_flush_failures_total", factory: factory)
        flushDuration = Timer(label: "flashback_ingest_flush_duration_seconds", factory: factory)
        sealedDayRecords = Counter(label: "flashback_day_records_sealed_total", factory: factory)
    }

    /// Counts one write: samples received, stored and refused (by reason), lines refused (by
    /// reason), and how long the store took.
    package func record(_ proto: IngestProtocol, outcome: WriteOutcome, lineErrors: [LineError], duration: Duration) {
        received[proto]?.increment(by: outcome.stored + outcome.rejectedTotal)
        if outcome.stored > 0 { stored[proto]?.increment(by: outcome.stored) }
        for (reason, count) in outcome.rejected where count > 0 {
            rejectedSamples[proto]?[reason]?.increment(by: count)
        }
        for error in lineErrors {
            rejectedLines[proto]?[error.reason]?.increment()
        }
        let (seconds, attoseconds) = duration.components
        writeDuration[proto]?.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Lines refused before any sample could be stored (e.g. a whole datagram of bad lines).
    package func record(_ proto: IngestProtocol, lineErrors: [LineError]) {
        for error in lineErrors {
            rejectedLines[proto]?[error.reason]?.increment()
        }
    }

    package func recordThrottled(_ proto: IngestProtocol) {
        throttled[proto]?.increment()
    }

    package func recordWriteFailure(_ proto: IngestProtocol) {
        writeFailures[proto]?.increment()
    }

    package func record(datagram outcome: DatagramOutcome, count: Int = 1) {
        datagrams[outcome]?.increment(by: count)
    }
}

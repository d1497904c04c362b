import CollectorModel
import CollectorStore
import Crypto
import Exposition
import Foundation
import Hummingbird
import NIOCore
import RocksDB
import Stats
import TimeSeries

/// `GET /metrics`: the Prometheus export. Text format 0.0.4 by default, OpenMetrics 1.0.0 when
/// `Accept` asks for `application/openmetrics-text`; sorted, with `# HELP` and `# TYPE` for
/// every family. With `--metrics-token`, scrapes must send `Authorization: Bearer <token>`.
struct MetricsRoutes {
    let registry: MetricsRegistry
    let stats: FleetStats
    let storage: CollectorStorage
    let store: TimeSeriesStore
    let version: String
    let token: String?
    let controlPlane: ControlPlaneHealth?
    /// Whether the fleet families (nodes, pairs, bucket traffic) are exported: not when the
    /// stats read a cluster TSDB, where dashboards read the fleet from the TSDB itself and each
    /// replica exports only its own families.
    let fleetFamilies: Bool
    let now: @Sendable () -> Date

    static let columnFamilies = ["blocks", "samples", "day", "ingest_log", "remote_outbox", "series", "registry", "meta"]

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/metrics") { request, _ -> Response in
            if let token {
                let sent = CallerAuthentication.credential(in: request.headers) ?? ""
                guard ConstantTime.equals(sent.utf8, token.utf8) else {
                    throw APIError(.unauthorized, "scrapes need Authorization: Bearer <--metrics-token>", headers: [.wwwAuthenticate: "Bearer"])
                }
            }
            let format = ExpositionFormat(accept: request.headers[.accept])
            let bytes = Exposition.render(try await families(), format: format)
            return Response(status: .ok, headers: [.contentType: format.contentType], body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }

    /// Self families (swift-metrics registry plus what is read at scrape time) and the domain.
    func families() async throws -> [MetricFamily] {
        typealias Label = MetricSample.Label
        var families = registry.families()
        families.append(.gauge("flashback_collector_build_info", "The collector's version (value 1).",
                               [([Label("version", version), Label("swift", "6.3")], 1)]))
        families.append(.gauge("flashback_rollup_lag_seconds", "Age of the oldest accepted sample not yet merged into its block (it is durable in the ingest log meanwhile).",
                               [([], Double(store.rollupLag.components.seconds) + Double(store.rollupLag.components.attoseconds) * 1e-18)]))
        families.append(.gauge("flashback_series_limit", "Most series per organization (--max-series-per-org); new series beyond it are refused.",
                               [([], Double(store.index.maxSeriesPerOrganization))]))
        families.append(.gauge("flashback_organization_series", "Series per organization.",
                               store.index.seriesCounts.map { ([Label("organization", $0.key)], Double($0.value)) }))
        families.append(.counter("flashback_unclean_shutdowns_total", "Unclean shutdowns (crash, kill -9, power loss) this data directory has seen.",
                                 [([], Double(storage.startup.uncleanShutdownCount))]))
        families.append(.gauge("flashback_previous_shutdown_unclean", "1 when the run before this one ended without a clean shutdown.",
                               [([], storage.startup.previousShutdownWasUnclean ? 1 : 0)]))
        // RocksDB, per column family.
        let database = storage.database
        let properties: [(family: String, property: String, help: String)] = [
            ("flashback_rocksdb_sst_bytes", "rocksdb.total-sst-files-size", "Size of the SST files."),
            ("flashback_rocksdb_live_data_bytes", "rocksdb.estimate-live-data-size", "Estimated size of the live data."),
            ("flashback_rocksdb_memtable_bytes", "rocksdb.cur-size-all-mem-tables", "Size of the memtables."),
            ("flashback_rocksdb_pending_compaction_bytes", "rocksdb.estimate-pending-compaction-bytes", "Bytes compactions still have to rewrite."),
            ("flashback_rocksdb_running_compactions", "rocksdb.num-running-compactions", "Compactions running now."),
            ("flashback_rocksdb_l0_files", "rocksdb.num-files-at-level0", "SST files at level 0 (many slow down reads and, beyond RocksDB's limits, writes)."),
        ]
        let handles = Self.columnFamilies.compactMap { name in (try? database.columnFamily(name)).map { (name, $0) } }
        for property in properties {
            families.append(.gauge(property.family, property.help, handles.compactMap { name, handle in
                // Some are string properties (the level file counts): read as text when not an integer.
                let value = database.integerProperty(property.property, of: handle)
                    ?? database.property(property.property, of: handle).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                return value.map { ([Label("column_family", name)], Double($0)) }
            }))
        }
        let tickers = database.statisticsTickers()
        families.append(.counter("flashback_rocksdb_compaction_read_bytes_total", "Bytes read by compactions.",
                                 [([], Double(tickers["rocksdb.compact.read.bytes"] ?? 0))]))
        families.append(.counter("flashback_rocksdb_compaction_written_bytes_total", "Bytes written by compactions.",
                                 [([], Double(tickers["rocksdb.compact.write.bytes"] ?? 0))]))
        families.append(.counter("flashback_rocksdb_write_stall_seconds_total", "Time writes were stalled by RocksDB.",
                                 [([], Double(tickers["rocksdb.stall.micros"] ?? 0) / 1e6)]))
        if fleetFamilies { families += try await stats.metricFamilies(now: now()) }
        if let controlPlane { families += controlPlane.metricFamilies() }
        return families
    }
}

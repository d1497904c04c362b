import ArgumentParser
import Catalog
import Exposition
import CollectorAuth
import CollectorHTTP
import CollectorStore
import CSystemMemory
import Foundation
import Ingest
import Ingestion
import Logging
import Registry
import RocksDB
import ServiceLifecycle
import Stats
import Synchronization
import TimeSeries
import UnixSignals

/// `flashback-collector serve`: runs the HTTP API and the UDP listener on the embedded RocksDB.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the collector (HTTP API, UDP ingest, RocksDB storage)."
    )

    @Option(name: .long, help: "JSON config file (env FLASHBACK_CONFIG). Keys are option names.")
    var config: String?

    @Option(name: .long, help: "Data directory: RocksDB, master key, JWT secret (default: ./data; env FLASHBACK_DATA_DIR).")
    var dataDir: String?

    @Option(name: .long, help: "HTTP listen address host:port (default: 127.0.0.1:8080; env FLASHBACK_HTTP_ADDRESS).")
    var httpAddress: String?

    @Option(name: .long, help: "UDP listen address host:port (default: 127.0.0.1:8089; env FLASHBACK_UDP_ADDRESS).")
    var udpAddress: String?

    @Option(name: .long, help: "UDP receive buffer in bytes (default: 8388608; env FLASHBACK_UDP_RECEIVE_BUFFER).")
    var udpReceiveBuffer: Int?

    @Option(name: .long, help: "UDP authentication: hmac (each datagram starts with '#fb1 <nodeId> <unix-seconds> <base64 HMAC-SHA256(nodeToken, rest)>') or none (default: none on a loopback address, hmac otherwise; env FLASHBACK_UDP_AUTH).")
    var udpAuth: String?

    @Option(name: .long, help: "Longest accepted line-protocol line in bytes; longer lines are refused (default: 65536; env FLASHBACK_MAX_LINE_LENGTH).")
    var maxLineLength: Int?

    @Option(name: .long, help: "Most tags on one line-protocol line; lines with more are refused (default: 64; env FLASHBACK_MAX_TAGS_PER_SERIES).")
    var maxTagsPerSeries: Int?

    @Option(name: .long, help: "Organization that datagrams without an #fb1 header are stored for when --udp-auth is none (default: none, i.e. public data; env FLASHBACK_UDP_ORGANIZATION).")
    var udpOrganization: String?

    @Option(name: .long, help: "Log format: text or json (default: text; env FLASHBACK_LOG_FORMAT).")
    var logFormat: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical (default: info; env FLASHBACK_LOG_LEVEL).")
    var logLevel: String?

    @Option(name: .long, help: "HS256 secret for user tokens (default: generated into DATA_DIR/jwt.secret; env FLASHBACK_JWT_SECRET).")
    var jwtSecret: String?

    @Option(name: .long, help: "PEM public key file (RS256, ES256 or EdDSA) of an external token issuer (default: none; env FLASHBACK_JWT_PUBLIC_KEY).")
    var jwtPublicKey: String?

    @Option(name: .long, help: "File with the 32-byte master key sealing secrets at rest (default: DATA_DIR/master.key, created 0600; env FLASHBACK_MASTER_KEY_FILE).")
    var masterKeyFile: String?

    @Option(name: .long, help: "PEM RSA public key file verifying public nodes that register without id_org (default: none; env FLASHBACK_PLATFORM_PUBLIC_KEY).")
    var platformPublicKey: String?

    @Option(name: .long, help: "Most keys per organization (default: 5; env FLASHBACK_MAX_ORG_KEYS).")
    var maxOrgKeys: Int?

    @Option(name: .long, help: "Accepted clock skew of signed node messages in seconds, either way (default: 300; env FLASHBACK_SIGNATURE_WINDOW).")
    var signatureWindow: Int?

    @Option(name: .long, help: "Seconds of silence after which a node is OFFLINE (default: 180; env FLASHBACK_NODE_OFFLINE_AFTER).")
    var nodeOfflineAfter: Int?

    @Option(name: .long, help: "Seconds of silence after which a node is DISCONNECTED (default: 900; env FLASHBACK_NODE_DISCONNECTED_AFTER).")
    var nodeDisconnectedAfter: Int?

    @Option(name: .long, help: "Largest request body in bytes, also after gzip decompression (default: 33554432; env FLASHBACK_MAX_BODY_SIZE).")
    var maxBodySize: Int?

    @Option(name: .long, help: "Bytes of ingest requests in flight before new ones get 503 + Retry-After (default: 134217728; env FLASHBACK_MAX_INFLIGHT_BYTES).")
    var maxInflightBytes: Int?

    @Option(name: .long, help: "Oldest accepted sample in seconds before now (default: 172800 = 48 h; env FLASHBACK_MAX_SAMPLE_AGE).")
    var maxSampleAge: Int?

    @Option(name: .long, help: "Series per organization; only new series beyond it are refused (default: 1000000; env FLASHBACK_MAX_SERIES_PER_ORG).")
    var maxSeriesPerOrg: Int?

    @Option(name: .long, help: "Distinct field names per organization; only new names beyond it are refused, so no tenant can fill the shared 65535-name field dictionary (default: 1000; env FLASHBACK_MAX_FIELDS_PER_ORG).")
    var maxFieldsPerOrg: Int?

    @Option(name: .long, help: "How long samples and minute rollups are kept, in seconds (default: 3024000 = 35 days; env FLASHBACK_RETENTION_MINUTE).")
    var retentionMinute: Int?

    @Option(name: .long, help: "How long sealed day rollups are kept, in seconds (default: 69120000 = 800 days; env FLASHBACK_RETENTION_DAY).")
    var retentionDay: Int?

    @Option(name: .long, help: "Longest wait of an accepted sample in memory before it is merged into its block, in milliseconds; the ingest log keeps it durable meanwhile (default: 2000; env FLASHBACK_FLUSH_INTERVAL_MS).")
    var flushIntervalMs: Int?

    @Option(name: .long, help: "Seconds between forced retention compactions (default: 21600 = 6 h; env FLASHBACK_RETENTION_INTERVAL).")
    var retentionInterval: Int?

    @Option(name: .long, help: "Longest range of minute rows one stats request may ask for, in seconds (default: 604800 = 7 days; env FLASHBACK_STATS_MAX_MINUTE_RANGE).")
    var statsMaxMinuteRange: Int?

    @Option(name: .long, help: "Longest range of day rows one stats request may ask for, in seconds (default: 34560000 = 400 days; env FLASHBACK_STATS_MAX_DAY_RANGE).")
    var statsMaxDayRange: Int?

    @Option(name: .long, help: "Most rows one stats answer may hold; larger answers are refused with 400 (default: 1000000; env FLASHBACK_STATS_MAX_ROWS).")
    var statsMaxRows: Int?

    @Option(name: .long, help: "Bearer token Prometheus must send to scrape /metrics (default: none, open; env FLASHBACK_METRICS_TOKEN).")
    var metricsToken: String?

    @Flag(inversion: .prefixedNo, help: "Fsync every acknowledged write: survives power loss, not only process crashes (default: false; env FLASHBACK_SYNC_WRITES).")
    var syncWrites: Bool?

    @Flag(inversion: .prefixedNo, help: "Let bucket validation reach loopback, link-local and private addresses (S3-compatible services on a private network; default: false; env FLASHBACK_VALIDATE_ALLOW_PRIVATE).")
    var validateAllowPrivate: Bool?

    @Option(name: .long, help: "Comma-separated hosts that bucket validation may reach whatever they resolve to, e.g. minio.internal (default: none; env FLASHBACK_VALIDATE_ALLOW_HOST).")
    var validateAllowHost: String?

    struct Settings {
        var dataDirectory: String
        var httpAddress: ListenAddress
        var udpAddress: ListenAddress
        var udpReceiveBuffer: Int
        var udpAuth: UDPAuthMode
        var udpOrganization: String
        var lineLimits: LineLimits
        var logFormat: LogFormat
        var logLevel: Logger.Level
        var jwtSecret: String?
        var jwtPublicKeyFile: String?
        var masterKeyFile: String
        var registry: RegistrySettings
        var timeSeries: TimeSeriesSettings
        var maxBodySize: Int
        var minuteRetention: TimeInterval
        var dayRetention: TimeInterval
        var retentionInterval: Int
        var maxInflightBytes: Int
        var stats: StatsSettings
        var metricsToken: String?
        var outboundPolicy: OutboundPolicy
    }

    func resolveSettings() async throws -> Settings {
        let source = try await SettingsSource(configFile: config)
        let dataDirectory = source.string("data-dir", flag: dataDir, default: "./data")
        let http = source.string("http-address", flag: httpAddress, default: "127.0.0.1:8080")
        let udp = source.string("udp-address", flag: udpAddress, default: "127.0.0.1:8089")
        guard let httpListen = ListenAddress(parsing: http) else { throw ValidationError("http-address must be host:port, not \(http)") }
        guard let udpListen = ListenAddress(parsing: udp) else { throw ValidationError("udp-address must be host:port, not \(udp)") }
        let formatText = source.string("log-format", flag: logFormat, default: "text")
        guard let format = LogFormat(rawValue: formatText) else { throw ValidationError("log-format must be text or json, not \(formatText)") }
        let levelText = source.string("log-level", flag: logLevel, default: "info")
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else { throw ValidationError("log-level \(levelText) is not a log level") }
        let receiveBuffer = try source.int("udp-receive-buffer", flag: udpReceiveBuffer, default: 8 << 20)
        let authText = source.string("udp-auth", flag: udpAuth, default: udpListen.isLoopback ? "none" : "hmac")
        guard let udpAuthMode = UDPAuthMode(rawValue: authText) else { throw ValidationError("udp-auth must be hmac or none, not \(authText)") }
        var registry = RegistrySettings()
        registry.maxKeysPerOrganization = try source.int("max-org-keys", flag: maxOrgKeys, default: 5)
        registry.signatureWindow = TimeInterval(try source.int("signature-window", flag: signatureWindow, default: 300))
        registry.liveness = LivenessPolicy(
            offlineAfter: TimeInterval(try source.int("node-offline-after", flag: nodeOfflineAfter, default: 180)),
            disconnectedAfter: TimeInterval(try source.int("node-disconnected-after", flag: nodeDisconnectedAfter, default: 900)))
        registry.syncWrites = try source.bool("sync-writes", flag: syncWrites, default: false)
        guard registry.maxKeysPerOrganization > 0, registry.signatureWindow > 0,
              registry.liveness.offlineAfter > 0, registry.liveness.disconnectedAfter > registry.liveness.offlineAfter else {
            throw ValidationError("max-org-keys and signature-window must be positive, and node-disconnected-after must exceed node-offline-after")
        }
        var timeSeries = TimeSeriesSettings.fleet
        timeSeries.maxSampleAge = TimeInterval(try source.int("max-sample-age", flag: maxSampleAge, default: 48 * 3600))
        timeSeries.maxSeriesPerOrganization = try source.int("max-series-per-org", flag: maxSeriesPerOrg, default: 1_000_000)
        timeSeries.maxFieldsPerOrganization = try source.int("max-fields-per-org", flag: maxFieldsPerOrg, default: 1_000)
        let bodyLimit = try source.int("max-body-size", flag: maxBodySize, default: 32 << 20)
        let minuteRetentionSeconds = try source.int("retention-minute", flag: retentionMinute, default: 35 * 86_400)
        let dayRetentionSeconds = try source.int("retention-day", flag: retentionDay, default: 800 * 86_400)
        let retentionEvery = try source.int("retention-interval", flag: retentionInterval, default: 6 * 3600)
        let flushEvery = try source.int("flush-interval-ms", flag: flushIntervalMs, default: 2000)
        guard flushEvery >= 10 else { throw ValidationError("flush-interval-ms must be at least 10") }
        timeSeries.flushInterval = .milliseconds(flushEvery)
        let inflight = try source.int("max-inflight-bytes", flag: maxInflightBytes, default: 128 << 20)
        let lineLimits = LineLimits(maxLineLength: try source.int("max-line-length", flag: maxLineLength, default: 64 * 1024),
                                    maxTagsPerSeries: try source.int("max-tags-per-series", flag: maxTagsPerSeries, default: 64))
        guard lineLimits.maxLineLength >= 64, lineLimits.maxTagsPerSeries >= 1 else {
            throw ValidationError("max-line-length must be at least 64 and max-tags-per-series at least 1")
        }
        guard inflight >= 1024 else { throw ValidationError("max-inflight-bytes must be at least 1024") }
        guard minuteRetentionSeconds >= 3600, retentionEvery >= 60 else {
            throw ValidationError("retention-minute must be at least 3600 and retention-interval at least 60 seconds")
        }
        guard TimeInterval(minuteRetentionSeconds) > timeSeries.maxSampleAge + 86_400, dayRetentionSeconds >= minuteRetentionSeconds else {
            // Blocks must outlive the window in which their day can still change, or a day would be
            // sealed from blocks already dropped.
            throw ValidationError("retention-minute must exceed max-sample-age by more than a day, and retention-day must be at least retention-minute")
        }
        guard timeSeries.maxSampleAge > 0, timeSeries.maxSeriesPerOrganization > 0, (1...65_535).contains(timeSeries.maxFieldsPerOrganization),
              bodyLimit >= 1024 else {
            throw ValidationError("max-sample-age and max-series-per-org must be positive, max-fields-per-org from 1 to 65535 and max-body-size at least 1024")
        }
        var stats = StatsSettings()
        stats.maxMinuteRange = TimeInterval(try source.int("stats-max-minute-range", flag: statsMaxMinuteRange, default: 7 * 86_400))
        stats.maxDayRange = TimeInterval(try source.int("stats-max-day-range", flag: statsMaxDayRange, default: 400 * 86_400))
        stats.maxRows = try source.int("stats-max-rows", flag: statsMaxRows, default: 1_000_000)
        guard stats.maxMinuteRange >= 60, stats.maxDayRange >= 86_400, stats.maxRows >= 1 else {
            throw ValidationError("stats-max-minute-range must be at least 60, stats-max-day-range at least 86400 and stats-max-rows at least 1")
        }
        if let file = source.optionalString("platform-public-key", flag: platformPublicKey) {
            guard let pem = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read platform-public-key file \(file)") }
            registry.platformPublicKeyPEM = String(decoding: pem, as: UTF8.self)
        }
        return Settings(
            dataDirectory: dataDirectory,
            httpAddress: httpListen,
            udpAddress: udpListen,
            udpReceiveBuffer: receiveBuffer,
            udpAuth: udpAuthMode,
            udpOrganization: source.string("udp-organization", flag: udpOrganization, default: ""),
            lineLimits: lineLimits,
            logFormat: format,
            logLevel: level,
            jwtSecret: source.optionalString("jwt-secret", flag: jwtSecret),
            jwtPublicKeyFile: source.optionalString("jwt-public-key", flag: jwtPublicKey),
            masterKeyFile: source.string("master-key-file", flag: masterKeyFile, default: (dataDirectory as NSString).appendingPathComponent("master.key")),
            registry: registry,
            timeSeries: timeSeries,
            maxBodySize: bodyLimit,
            minuteRetention: TimeInterval(minuteRetentionSeconds),
            dayRetention: TimeInterval(dayRetentionSeconds),
            retentionInterval: retentionEvery,
            maxInflightBytes: inflight,
            stats: stats,
            metricsToken: source.optionalString("metrics-token", flag: metricsToken),
            outboundPolicy: OutboundPolicy(
                allowPrivateAddresses: try source.bool("validate-allow-private", flag: validateAllowPrivate, default: false),
                allowedHosts: Set((source.optionalString("validate-allow-host", flag: validateAllowHost) ?? "")
                    .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })))
    }

    /// `SWIFT_BACKTRACE` when the operator set none: a crash prints the crashed thread's
    /// addresses and the image list in about 0.1 s (symbolicated offline, README "Operations")
    /// instead of symbolicating for seconds to minutes while the dying process holds its ports.
    static let crashBacktraceSetting = "enable=yes,interactive=no,symbolicate=off,timeout=0s,threads=crashed,registers=none"

    func run() async throws {
        // Peak RSS under ingest load is about a third lower with glibc's mmap threshold fixed
        // from the start, and a crash must free the ports at once (see
        // fb_exec_with_runtime_settings and README, Operations); this returns when already done.
        _ = fb_exec_with_runtime_settings(CommandLine.unsafeArgv, Self.crashBacktraceSetting)
        _ = fb_exit_after_crash_report()
        let settings = try await resolveSettings()
        bootstrapLogging(format: settings.logFormat, level: settings.logLevel)
        let logger = Logger(label: "flashback.collector")

        let storage: CollectorStorage
        do {
            storage = try CollectorStorage.open(dataDirectory: settings.dataDirectory, extraFamilies: TimeSeriesStore.columnFamilies(minuteRetention: settings.minuteRetention, dayRetention: settings.dayRetention), logger: logger)
        } catch {
            StartupFailure.exit(error)
        }
        if storage.startup.previousShutdownWasUnclean {
            logger.warning("previous shutdown was unclean; RocksDB recovered from its write-ahead log",
                           metadata: ["unclean_shutdowns_total": "\(storage.startup.uncleanShutdownCount)"])
        }
        logger.info("storage open", metadata: [
            "path": "\(storage.database.path)",
            "created": "\(storage.startup.createdNow)",
            "format_version": "\(CollectorStorage.formatVersion)",
        ])

        let failure: (any Error)?
        do {
            try await serve(settings: settings, storage: storage, logger: logger)
            failure = nil
        } catch {
            failure = error
        }
        storage.close()
        if let failure { StartupFailure.exit(failure) }
        logger.info("clean shutdown complete")
    }

    private func serve(settings: Settings, storage: CollectorStorage, logger: Logger) async throws {
        let (masterKey, _) = try MasterKey.loadOrCreate(at: settings.masterKeyFile)
        let tokens = try await TokenAuthority.make(keys: tokenKeys(settings))
        let registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: masterKey), settings: settings.registry, logger: logger)
        let catalog = try StorageCatalog(store: RocksDBCatalogStore(storage: storage, sync: settings.registry.syncWrites),
                                         secrets: SecretBox(masterKey: masterKey), settings: CatalogSettings(), logger: logger)
        let timeSeries = try TimeSeriesStore(database: storage.database, settings: settings.timeSeries)
        if timeSeries.pendingLogEntries > 0 {
            logger.info("replayed the ingest log", metadata: ["entries": "\(timeSeries.pendingLogEntries)", "samples": "\(timeSeries.pendingSamples)"])
        }
        CollectorRequestContext.bodyLimit.store(settings.maxBodySize, ordering: .relaxed)

        let readiness = ServiceReadiness()
        readiness.markUp(.storage)
        let metricsRegistry = MetricsRegistry()
        for (name, help) in IngestMetrics.helps { metricsRegistry.describe(name, help) }
        let metrics = IngestMetrics(factory: metricsRegistry)
        let dependencies = CollectorApplication.Dependencies(
            storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: timeSeries,
            syncWrites: settings.registry.syncWrites, admission: IngestAdmission(limit: settings.maxInflightBytes),
            validator: BucketValidator(policy: settings.outboundPolicy), readiness: readiness, version: FlashbackCollector.version,
            metrics: metrics, lineLimits: settings.lineLimits, statsSettings: settings.stats, metricsRegistry: metricsRegistry,
            metricsToken: settings.metricsToken)
        let http = HTTPListenerService(
            CollectorApplication.make(dependencies, address: settings.httpAddress, logger: logger),
            address: settings.httpAddress)
        let udp = UDPListener(
            address: settings.udpAddress,
            sink: LineProtocolDatagramSink(writer: dependencies.ingest, mode: settings.udpAuth, window: settings.registry.signatureWindow,
                                           logger: logger, unsignedOrganization: settings.udpOrganization),
            receiveBufferBytes: settings.udpReceiveBuffer, onListening: { readiness.markUp(.udp) }, logger: logger, metrics: metrics)

        // Services stop in reverse order: readiness flips to 503 first, then listeners drain.
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                // Stops last: its final flush takes what the listeners accepted until they stopped.
                .init(service: FlushService(store: timeSeries, logger: logger, metrics: metrics)),
                .init(service: RetentionService(store: timeSeries, interval: .seconds(settings.retentionInterval), logger: logger)),
                .init(service: http),
                .init(service: udp),
                .init(service: ReadinessService(readiness: readiness)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("services stopped; closing storage")
    }

    private func tokenKeys(_ settings: Settings) throws -> TokenKeys {
        var keys = TokenKeys()
        if let file = settings.jwtPublicKeyFile {
            guard let pem = FileManager.default.contents(atPath: file).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw SecretFileError(description: "cannot read the JWT public key file \(file)")
            }
            keys.publicKeyPEM = pem
        }
        if let secret = settings.jwtSecret {
            keys.hmacSecret = Array(secret.utf8)
        } else if settings.jwtPublicKeyFile == nil {
            keys.hmacSecret = try JWTSecretFile.loadOrCreate(dataDirectory: settings.dataDirectory)
        }
        return keys
    }
}

/// The HS256 secret generated into the data directory when none is configured, so that
/// `flashback-collector token` and `serve` agree without any setup.
enum JWTSecretFile {
    static func path(dataDirectory: String) -> String {
        (dataDirectory as NSString).appendingPathComponent("jwt.secret")
    }

    static func loadOrCreate(dataDirectory: String) throws -> [UInt8] {
        try SecretFile.loadOrCreate(at: path(dataDirectory: dataDirectory), byteCount: 32).bytes
    }
}

/// Ends the process after an environment failure (port taken, data directory locked, bad key
/// file) with exactly one line on stderr and exit status 1.
enum StartupFailure {
    static func exit(_ error: any Error) -> Never {
        let message: String
        switch error {
        case let error as ListenError: message = error.description
        case let error as StorageError: message = error.description
        case let error as SecretFileError: message = error.description
        case let error as TokenKeyError: message = error.description
        case let error as RegistryError: message = "platform public key: \(error.message)"
        case let error as ServiceGroupError: message = "\(error)"
        default: message = "\(error)"
        }
        FileHandle.standardError.write(Data("flashback-collector: error: \(message)\n".utf8))
        Foundation.exit(1)
    }
}

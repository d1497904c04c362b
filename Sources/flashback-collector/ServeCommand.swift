import ArgumentParser
import Catalog
import Exposition
import CollectorAuth
import CollectorHTTP
import CollectorStore
import ControlPlanePostgres
import CSystemMemory
import Foundation
import Ingest
import Ingestion
import Logging
import Registry
import RemoteWrite
import ClusterStats
import AsyncHTTPClient
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

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: Settings.httpAddress.help)
    var httpAddress: String?

    @Option(name: .long, help: Settings.udpAddress.help)
    var udpAddress: String?

    @Option(name: .long, help: Settings.udpReceiveBuffer.help)
    var udpReceiveBuffer: Int?

    @Option(name: .long, help: Settings.udpAuth.help)
    var udpAuth: String?

    @Option(name: .long, help: Settings.maxLineLength.help)
    var maxLineLength: Int?

    @Option(name: .long, help: Settings.maxTagsPerSeries.help)
    var maxTagsPerSeries: Int?

    @Option(name: .long, help: Settings.udpOrganization.help)
    var udpOrganization: String?

    @Option(name: .long, help: Settings.logFormat.help)
    var logFormat: String?

    @Option(name: .long, help: Settings.logLevel.help)
    var logLevel: String?

    @Option(name: .long, help: Settings.jwtPublicKey.help)
    var jwtPublicKey: String?

    @Option(name: .long, help: Settings.masterKeyFile.help)
    var masterKeyFile: String?

    @Option(name: .long, help: Settings.platformPublicKey.help)
    var platformPublicKey: String?

    @Option(name: .long, help: Settings.maxOrgKeys.help)
    var maxOrgKeys: Int?

    @Option(name: .long, help: Settings.signatureWindow.help)
    var signatureWindow: Int?

    @Option(name: .long, help: Settings.nodeOfflineAfter.help)
    var nodeOfflineAfter: Int?

    @Option(name: .long, help: Settings.nodeDisconnectedAfter.help)
    var nodeDisconnectedAfter: Int?

    @Option(name: .long, help: Settings.maxBodySize.help)
    var maxBodySize: Int?

    @Option(name: .long, help: Settings.maxInflightBytes.help)
    var maxInflightBytes: Int?

    @Option(name: .long, help: Settings.maxSampleAge.help)
    var maxSampleAge: Int?

    @Option(name: .long, help: Settings.maxSeriesPerOrg.help)
    var maxSeriesPerOrg: Int?

    @Option(name: .long, help: Settings.maxFieldsPerOrg.help)
    var maxFieldsPerOrg: Int?

    @Option(name: .long, help: Settings.retentionMinute.help)
    var retentionMinute: Int?

    @Option(name: .long, help: Settings.retentionDay.help)
    var retentionDay: Int?

    @Option(name: .long, help: Settings.flushIntervalMs.help)
    var flushIntervalMs: Int?

    @Option(name: .long, help: Settings.retentionInterval.help)
    var retentionInterval: Int?

    @Option(name: .long, help: Settings.statsMaxMinuteRange.help)
    var statsMaxMinuteRange: Int?

    @Option(name: .long, help: Settings.statsMaxDayRange.help)
    var statsMaxDayRange: Int?

    @Option(name: .long, help: Settings.statsMaxRows.help)
    var statsMaxRows: Int?

    @Option(name: .long, help: Settings.metricsToken.help)
    var metricsToken: String?

    @Option(name: .long, help: Settings.adminTokenFile.help)
    var adminTokenFile: String?

    @Option(name: .long, help: Settings.nodeEnvDir.help)
    var nodeEnvDir: String?

    @Option(name: .long, help: Settings.publicURL.help)
    var publicURL: String?

    @Flag(inversion: .prefixedNo, help: Settings.nodeEnvPlaintext.help)
    var nodeEnvPlaintext: Bool?

    @Option(name: .long, help: Settings.nodeDomain.help)
    var nodeDomain: String?

    @Option(name: .long, help: Settings.nodeURLTemplate.help)
    var nodeURLTemplate: String?

    @Flag(inversion: .prefixedNo, help: Settings.syncWrites.help)
    var syncWrites: Bool?

    @Flag(inversion: .prefixedNo, help: Settings.validateAllowPrivate.help)
    var validateAllowPrivate: Bool?

    @Option(name: .long, help: Settings.validateAllowHost.help)
    var validateAllowHost: String?

    @Option(name: .long, help: Settings.stsEndpoint.help)
    var stsEndpoint: String?

    @Option(name: .long, help: Settings.gcsTokenURL.help)
    var gcsTokenURL: String?

    @Option(name: .long, help: Settings.gcsAPIURL.help)
    var gcsAPIURL: String?

    @Option(name: .long, help: Settings.awsAccessKeyID.help)
    var awsAccessKeyID: String?

    @Option(name: .long, help: Settings.awsSecretAccessKey.help)
    var awsSecretAccessKey: String?

    @Option(name: .long, help: Settings.registryURL.help)
    var registryURL: String?

    @Option(name: .long, help: Settings.registryTimeout.help)
    var registryTimeout: Int?

    @Option(name: .long, help: Settings.registryRefreshInterval.help)
    var registryRefreshInterval: Int?

    @Option(name: .long, help: Settings.remoteWriteURL.help)
    var remoteWriteURL: [String] = []

    @Option(name: .long, help: Settings.remoteWriteBearerTokenFile.help)
    var remoteWriteBearerTokenFile: String?

    @Option(name: .long, help: Settings.remoteWriteHeader.help)
    var remoteWriteHeader: [String] = []

    @Option(name: .long, help: Settings.remoteWriteMaxBacklog.help)
    var remoteWriteMaxBacklog: Int?

    @Option(name: .long, help: Settings.remoteWriteTimeout.help)
    var remoteWriteTimeout: Int?

    @Option(name: .long, help: Settings.remoteWriteMaxSamples.help)
    var remoteWriteMaxSamples: Int?

    @Option(name: .long, help: Settings.statsSource.help)
    var statsSource: String?

    @Option(name: .long, help: Settings.statsAnswerTTL.help)
    var statsAnswerTtl: Int?

    @Option(name: .long, help: Settings.statsSealAfter.help)
    var statsSealAfter: Int?

    @Option(name: .long, help: Settings.statsSourceBearerTokenFile.help)
    var statsSourceBearerTokenFile: String?

    @Option(name: .long, help: Settings.statsSourceHeader.help)
    var statsSourceHeader: [String] = []

    struct Resolved {
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
        var adminTokenFile: String?
        var nodeEnvironment: NodeEnvironmentSource?
        var nodeEnvironmentPlaintext: Bool
        var outboundPolicy: OutboundPolicy
        var sts: STSSettings?
        var gcs: GCSEndpoints
        var cluster: ClusterSettings?
        var remoteWrite: [RemoteWriteDestination]
        var remoteWriteSettings: RemoteWriteSettings
        var statsSource: PrometheusRollupSource.Settings?
    }

    /// Cluster mode's control plane.
    struct ClusterSettings {
        var url: PostgresURL
        var timeout: Duration
        var refreshInterval: Duration
    }

    func resolveSettings() async throws -> Resolved {
        let source = try await SettingsSource(configFile: common.config)
        let dataDirectory = source.value(Settings.dataDir, flag: common.dataDir)
        let http = source.value(Settings.httpAddress, flag: httpAddress)
        let udp = source.value(Settings.udpAddress, flag: udpAddress)
        guard let httpListen = ListenAddress(parsing: http) else { throw ValidationError("http-address must be host:port, not \(http)") }
        guard let udpListen = ListenAddress(parsing: udp) else { throw ValidationError("udp-address must be host:port, not \(udp)") }
        let formatText = source.value(Settings.logFormat, flag: logFormat)
        guard let format = LogFormat(rawValue: formatText) else { throw ValidationError("log-format must be text or json, not \(formatText)") }
        let levelText = source.value(Settings.logLevel, flag: logLevel)
        guard let level = Logger.Level(rawValue: levelText.lowercased()) else { throw ValidationError("log-level \(levelText) is not a log level") }
        let receiveBuffer = try source.value(Settings.udpReceiveBuffer, flag: udpReceiveBuffer)
        let authText = source.value(Settings.udpAuth, flag: udpAuth) ?? (udpListen.isLoopback ? "none" : "hmac")
        guard let udpAuthMode = UDPAuthMode(rawValue: authText) else { throw ValidationError("udp-auth must be hmac or none, not \(authText)") }
        var registry = RegistrySettings()
        registry.maxKeysPerOrganization = try source.value(Settings.maxOrgKeys, flag: maxOrgKeys)
        registry.signatureWindow = TimeInterval(try source.value(Settings.signatureWindow, flag: signatureWindow))
        registry.liveness = LivenessPolicy(
            offlineAfter: TimeInterval(try source.value(Settings.nodeOfflineAfter, flag: nodeOfflineAfter)),
            disconnectedAfter: TimeInterval(try source.value(Settings.nodeDisconnectedAfter, flag: nodeDisconnectedAfter)))
        registry.syncWrites = try source.value(Settings.syncWrites, flag: syncWrites)
        if let domain = source.value(Settings.nodeDomain, flag: nodeDomain) {
            let template = source.value(Settings.nodeURLTemplate, flag: nodeURLTemplate)
            let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
            guard !labels.isEmpty, labels.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }) else {
                throw ValidationError("node-domain must be a DNS name such as nodes.example.com, not \(domain)")
            }
            guard template.hasPrefix("https://") || template.hasPrefix("http://"), template.contains("{domain}") || template.contains("{ip}") else {
                throw ValidationError("node-url-template must be an http(s) URL that uses {domain} or {ip}, not \(template)")
            }
            registry.nodeURLs = NodeURLTemplate(template: template, domain: domain.lowercased())
        }
        guard registry.maxKeysPerOrganization > 0, registry.signatureWindow > 0,
              registry.liveness.offlineAfter > 0, registry.liveness.disconnectedAfter > registry.liveness.offlineAfter else {
            throw ValidationError("max-org-keys and signature-window must be positive, and node-disconnected-after must exceed node-offline-after")
        }
        var timeSeries = TimeSeriesSettings.fleet
        timeSeries.maxSampleAge = TimeInterval(try source.value(Settings.maxSampleAge, flag: maxSampleAge))
        timeSeries.maxSeriesPerOrganization = try source.value(Settings.maxSeriesPerOrg, flag: maxSeriesPerOrg)
        timeSeries.maxFieldsPerOrganization = try source.value(Settings.maxFieldsPerOrg, flag: maxFieldsPerOrg)
        let bodyLimit = try source.value(Settings.maxBodySize, flag: maxBodySize)
        let minuteRetentionSeconds = try source.value(Settings.retentionMinute, flag: retentionMinute)
        let dayRetentionSeconds = try source.value(Settings.retentionDay, flag: retentionDay)
        let retentionEvery = try source.value(Settings.retentionInterval, flag: retentionInterval)
        let flushEvery = try source.value(Settings.flushIntervalMs, flag: flushIntervalMs)
        guard flushEvery >= 10 else { throw ValidationError("flush-interval-ms must be at least 10") }
        timeSeries.flushInterval = .milliseconds(flushEvery)
        let inflight = try source.value(Settings.maxInflightBytes, flag: maxInflightBytes)
        let lineLimits = LineLimits(maxLineLength: try source.value(Settings.maxLineLength, flag: maxLineLength),
                                    maxTagsPerSeries: try source.value(Settings.maxTagsPerSeries, flag: maxTagsPerSeries))
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
        var (remoteDestinations, remoteSettings, maxBacklog) = try remoteWrite(source)
        // Samples of a day readers may have sealed go with its late-delivery mark.
        remoteSettings.lateAfter = try sealAfter(source, timeSeries: timeSeries)
        timeSeries.remoteWriteDestinations = remoteDestinations.map(\.name)
        timeSeries.remoteWriteMaxBacklogBytes = maxBacklog
        timeSeries.dayRetention = TimeInterval(dayRetentionSeconds)
        var stats = StatsSettings()
        stats.maxMinuteRange = TimeInterval(try source.value(Settings.statsMaxMinuteRange, flag: statsMaxMinuteRange))
        stats.maxDayRange = TimeInterval(try source.value(Settings.statsMaxDayRange, flag: statsMaxDayRange))
        stats.maxRows = try source.value(Settings.statsMaxRows, flag: statsMaxRows)
        guard stats.maxMinuteRange >= 60, stats.maxDayRange >= 86_400, stats.maxRows >= 1 else {
            throw ValidationError("stats-max-minute-range must be at least 60, stats-max-day-range at least 86400 and stats-max-rows at least 1")
        }
        if let file = source.value(Settings.platformPublicKey, flag: platformPublicKey) {
            guard let pem = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read platform-public-key file \(file)") }
            registry.platformPublicKeyPEM = String(decoding: pem, as: UTF8.self)
        }
        return Resolved(
            dataDirectory: dataDirectory,
            httpAddress: httpListen,
            udpAddress: udpListen,
            udpReceiveBuffer: receiveBuffer,
            udpAuth: udpAuthMode,
            udpOrganization: source.value(Settings.udpOrganization, flag: udpOrganization),
            lineLimits: lineLimits,
            logFormat: format,
            logLevel: level,
            jwtSecret: source.value(Settings.jwtSecret, flag: common.jwtSecret),
            jwtPublicKeyFile: source.value(Settings.jwtPublicKey, flag: jwtPublicKey),
            masterKeyFile: source.value(Settings.masterKeyFile, flag: masterKeyFile) ?? (dataDirectory as NSString).appendingPathComponent("master.key"),
            registry: registry,
            timeSeries: timeSeries,
            maxBodySize: bodyLimit,
            minuteRetention: TimeInterval(minuteRetentionSeconds),
            dayRetention: TimeInterval(dayRetentionSeconds),
            retentionInterval: retentionEvery,
            maxInflightBytes: inflight,
            stats: stats,
            metricsToken: source.value(Settings.metricsToken, flag: metricsToken),
            adminTokenFile: source.value(Settings.adminTokenFile, flag: adminTokenFile),
            nodeEnvironment: try nodeEnvironment(source, httpAddress: httpListen),
            nodeEnvironmentPlaintext: try source.value(Settings.nodeEnvPlaintext, flag: nodeEnvPlaintext),
            outboundPolicy: OutboundPolicy(
                allowPrivateAddresses: try source.value(Settings.validateAllowPrivate, flag: validateAllowPrivate),
                allowedHosts: Set((source.value(Settings.validateAllowHost, flag: validateAllowHost) ?? "")
                    .split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })),
            sts: try stsSettings(source),
            gcs: GCSEndpoints(tokenURL: source.value(Settings.gcsTokenURL, flag: gcsTokenURL), apiURL: source.value(Settings.gcsAPIURL, flag: gcsAPIURL)),
            cluster: try clusterSettings(source),
            remoteWrite: remoteDestinations,
            remoteWriteSettings: remoteSettings,
            statsSource: try statsSourceSettings(source, timeSeries: timeSeries, dayRetention: TimeInterval(dayRetentionSeconds)))
    }

    /// The cluster TSDB the stats read, when `--stats-source` names one.
    private func statsSourceSettings(_ source: SettingsSource, timeSeries: TimeSeriesSettings, dayRetention: TimeInterval) throws -> PrometheusRollupSource.Settings? {
        guard let text = source.value(Settings.statsSource, flag: statsSource) else { return nil }
        let token = try Self.bearerToken(source, Settings.statsSourceBearerTokenFile, flag: statsSourceBearerTokenFile)
        // Several URLs, comma-separated: an HA pair answering for the same data, the first preferred.
        var endpoints: [RemoteWriteDestination] = []
        for url in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !url.isEmpty {
            do {
                endpoints.append(try RemoteWriteDestination(parsing: url, bearerToken: token, extraHeaders: source.values(Settings.statsSourceHeader, flags: statsSourceHeader)))
            } catch {
                throw ValidationError(error.description.replacingOccurrences(of: "remote-write", with: "stats-source"))
            }
        }
        guard let endpoint = endpoints.first else { throw ValidationError("stats-source names no URL") }
        var settings = PrometheusRollupSource.Settings(baseURL: endpoint.url)
        settings.headers = endpoint.headers
        settings.fallbacks = endpoints.dropFirst().map { PrometheusRollupSource.Endpoint(url: $0.url, headers: $0.headers) }
        settings.retention = dayRetention
        settings.latestLookback = timeSeries.maxSampleAge + 2 * 3600
        settings.sealAfter = try sealAfter(source, timeSeries: timeSeries)
        let ttl = try source.value(Settings.statsAnswerTTL, flag: statsAnswerTtl)
        guard (0...3600).contains(ttl) else { throw ValidationError("stats-answer-ttl must be from 0 to 3600 seconds") }
        settings.answerTTL = TimeInterval(ttl)
        return settings
    }

    /// `--stats-seal-after` (0: `--max-sample-age` + 1 h). Shorter than some replica's
    /// `--max-sample-age` is allowed: samples it accepts for sealed days carry their mark.
    private func sealAfter(_ source: SettingsSource, timeSeries: TimeSeriesSettings) throws -> TimeInterval {
        let configured = try source.value(Settings.statsSealAfter, flag: statsSealAfter)
        let seconds = configured == 0 ? Int(timeSeries.maxSampleAge) + 3600 : configured
        guard (3600...400 * 86_400).contains(seconds) else {
            throw ValidationError("stats-seal-after must be from 3600 seconds to 400 days")
        }
        return TimeInterval(seconds)
    }

    /// The contents of the token file `setting` names, if any.
    private static func bearerToken(_ source: SettingsSource, _ setting: Setting<String?>, flag: String?) throws -> String? {
        guard let file = source.value(setting, flag: flag) else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else { throw ValidationError("cannot read \(setting.key) \(file)") }
        return String(decoding: data, as: UTF8.self)
    }

    /// The remote-write receivers and how to send to them.
    private func remoteWrite(_ source: SettingsSource) throws -> ([RemoteWriteDestination], RemoteWriteSettings, maxBacklog: Int) {
        let token = try Self.bearerToken(source, Settings.remoteWriteBearerTokenFile, flag: remoteWriteBearerTokenFile)
        let headers = source.values(Settings.remoteWriteHeader, flags: remoteWriteHeader)
        var destinations: [RemoteWriteDestination] = []
        for url in source.values(Settings.remoteWriteURL, flags: remoteWriteURL) {
            do {
                let destination = try RemoteWriteDestination(parsing: url, bearerToken: token, extraHeaders: headers)
                guard !destinations.contains(where: { $0.name == destination.name }) else {
                    throw ValidationError("remote-write-url \(destination.name) is given twice")
                }
                destinations.append(destination)
            } catch let error as RemoteWriteConfigurationError {
                throw ValidationError(error.description)
            }
        }
        var settings = RemoteWriteSettings()
        let timeout = try source.value(Settings.remoteWriteTimeout, flag: remoteWriteTimeout)
        settings.maxSamplesPerRequest = try source.value(Settings.remoteWriteMaxSamples, flag: remoteWriteMaxSamples)
        let maxBacklog = try source.value(Settings.remoteWriteMaxBacklog, flag: remoteWriteMaxBacklog)
        guard (1...600).contains(timeout), (1...1_000_000).contains(settings.maxSamplesPerRequest), maxBacklog >= 1 << 20 else {
            throw ValidationError("remote-write-timeout must be 1 to 600 seconds, remote-write-max-samples 1 to 1000000 and remote-write-max-backlog at least 1048576 bytes")
        }
        settings.timeout = .seconds(timeout)
        return (destinations, settings, maxBacklog)
    }

    /// The shared control plane, when `--registry-url` names one.
    private func clusterSettings(_ source: SettingsSource) throws -> ClusterSettings? {
        guard let text = source.value(Settings.registryURL, flag: registryURL) else { return nil }
        let url: PostgresURL
        do {
            url = try PostgresURL(text)
        } catch {
            throw ValidationError("registry-url: \(error.description)")
        }
        let timeout = try source.value(Settings.registryTimeout, flag: registryTimeout)
        let refresh = try source.value(Settings.registryRefreshInterval, flag: registryRefreshInterval)
        guard (1...300).contains(timeout), (1...86_400).contains(refresh) else {
            throw ValidationError("registry-timeout must be 1 to 300 seconds and registry-refresh-interval 1 to 86400 seconds")
        }
        return ClusterSettings(url: url, timeout: .seconds(timeout), refreshInterval: .seconds(refresh))
    }

    /// The collector's AWS identity for delegated buckets, when both halves of its key are set.
    private func stsSettings(_ source: SettingsSource) throws -> STSSettings? {
        let keyID = source.value(Settings.awsAccessKeyID, flag: awsAccessKeyID)
        let secret = source.value(Settings.awsSecretAccessKey, flag: awsSecretAccessKey)
        guard let keyID, let secret else {
            if keyID != nil || secret != nil { throw ValidationError("aws-access-key-id and aws-secret-access-key go together") }
            return nil
        }
        let endpoint = source.value(Settings.stsEndpoint, flag: stsEndpoint)
        guard let url = URL(string: endpoint), url.scheme == "https" || url.scheme == "http", url.host != nil else {
            throw ValidationError("sts-endpoint must be an http or https URL, not \(endpoint)")
        }
        return STSSettings(endpoint: endpoint, accessKeyID: keyID, secretAccessKey: secret)
    }

    /// The env files of `POST /secrets`, when `--node-env-dir` names a directory.
    private func nodeEnvironment(_ source: SettingsSource, httpAddress: ListenAddress) throws -> NodeEnvironmentSource? {
        guard let directory = source.value(Settings.nodeEnvDir, flag: nodeEnvDir) else { return nil }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("node-env-dir \(directory) is not a directory")
        }
        let base = source.value(Settings.publicURL, flag: publicURL) ?? "http://\(httpAddress)"
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ValidationError("public-url must be an http or https URL, not \(base)")
        }
        return NodeEnvironmentSource(directory: directory, variables: .init(publicURL: base))
    }

    /// `SWIFT_BACKTRACE` when the operator set none: a crash prints the crashed thread's
    /// addresses and the image list in about 0.1 s (symbolicated offline, README "Operations")
    /// instead of symbolicating for seconds to minutes while the dying process holds its ports.
    static let crashBacktraceSetting = "enable=yes,interactive=no,symbolicate=off,timeout=0s,threads=crashed,registers=none"

    func run() async throws {
        // glibc's malloc tunables are read before the first allocation (buffers reused rather
        // than faulted in again, two arenas), and a crash must free the ports at once (see
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

    private func serve(settings: Resolved, storage: CollectorStorage, logger: Logger) async throws {
        let (masterKey, _) = try MasterKey.loadOrCreate(at: settings.masterKeyFile)
        let tokens = try await TokenAuthority.make(keys: tokenKeys(settings))
        let controlPlane = try await ControlPlane.open(settings, storage: storage, secrets: SecretBox(masterKey: masterKey), logger: logger)
        defer { controlPlane.stop() }
        let (registry, catalog) = (controlPlane.registry, controlPlane.catalog)
        let timeSeries = try TimeSeriesStore(database: storage.database, settings: settings.timeSeries) { discarded in
            logger.warning("no remote-write receiver is configured; discarded the writes an earlier run had queued",
                           metadata: ["entries": "\(discarded)"])
        }
        if timeSeries.pendingLogEntries > 0 {
            logger.info("replayed the ingest log", metadata: ["entries": "\(timeSeries.pendingLogEntries)", "samples": "\(timeSeries.pendingSamples)"])
        }
        CollectorRequestContext.bodyLimit.store(settings.maxBodySize, ordering: .relaxed)

        let readiness = ServiceReadiness()
        readiness.markUp(.storage)
        let metricsRegistry = MetricsRegistry()
        for (name, help) in IngestMetrics.helps { metricsRegistry.describe(name, help) }
        let metrics = IngestMetrics(factory: metricsRegistry)
        for (name, help) in RemoteWriteMetrics.helps { metricsRegistry.describe(name, help) }
        let remoteClient = HTTPClient(eventLoopGroupProvider: .singleton,
                                      configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))
        var senders: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let outbox = timeSeries.outbox {
            let remoteMetrics = RemoteWriteMetrics(maxBacklogBytes: outbox.maxBacklogBytes, factory: metricsRegistry)
            for destination in settings.remoteWrite {
                senders.append(.init(service: RemoteWriteSender(destination: destination, outbox: outbox, index: timeSeries.index, client: remoteClient,
                                                                settings: settings.remoteWriteSettings, metrics: remoteMetrics, logger: logger)))
                logger.info("remote write on", metadata: ["destination": "\(destination.name)", "backlog_bytes": "\(outbox.backlog(destination.name).bytes)"])
            }
        }
        let admin = try adminToken(settings).map { token in
            let checkpoints = Checkpoints(storage: storage, secrets: [
                (name: "master.key", path: settings.masterKeyFile),
                (name: "jwt.secret", path: JWTSecretFile.path(dataDirectory: settings.dataDirectory)),
            ])
            let removed = checkpoints.removeAll()
            if removed > 0 { logger.info("removed checkpoints of backups that did not finish", metadata: ["checkpoints": "\(removed)"]) }
            return (token: token, checkpoints: checkpoints)
        }
        let dependencies = CollectorApplication.Dependencies(
            storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: timeSeries,
            syncWrites: settings.registry.syncWrites, admission: IngestAdmission(limit: settings.maxInflightBytes),
            validator: BucketValidator(policy: settings.outboundPolicy, sts: settings.sts, gcs: settings.gcs), readiness: readiness, version: FlashbackCollector.version,
            metrics: metrics, lineLimits: settings.lineLimits, statsSettings: settings.stats, metricsRegistry: metricsRegistry,
            metricsToken: settings.metricsToken, nodeEnvironment: settings.nodeEnvironment,
            nodeEnvironmentPlaintext: settings.nodeEnvironmentPlaintext, controlPlane: controlPlane.health,
            statsSource: try settings.statsSource.map {
                PrometheusRollupSource(settings: $0, client: remoteClient, metrics: metricsRegistry,
                                       cache: try SealedDayCache(path: (settings.dataDirectory as NSString).appendingPathComponent("stats-cache")))
            }, admin: admin)
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
            ] + senders + [
                // Stops after the listeners: its last act writes the buffered last-heard times.
                .init(service: controlPlane),
                .init(service: RetentionService(store: timeSeries, interval: .seconds(settings.retentionInterval), logger: logger)),
                .init(service: http),
                .init(service: udp),
                .init(service: ReadinessService(readiness: readiness)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            try? await remoteClient.shutdown()
            throw error
        }
        try? await remoteClient.shutdown()
        registry.persistLastHeard()
        logger.info("services stopped; closing storage")
    }

    /// The token of `/admin/*` from `--admin-token-file` (trimmed), or `nil` when unset.
    private func adminToken(_ settings: Resolved) throws -> String? {
        guard let file = settings.adminTokenFile else { return nil }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw SecretFileError(description: "cannot read the admin token file \(file)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= 16, !token.contains(where: { $0.isWhitespace }) else {
            throw SecretFileError(description: "the admin token file \(file) must hold one token of 16 characters or more")
        }
        return token
    }

    private func tokenKeys(_ settings: Resolved) throws -> TokenKeys {
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

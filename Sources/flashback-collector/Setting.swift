import ArgumentParser
import Catalog
import CollectorHTTP
import Foundation
import Ingestion
import Registry
import RemoteWrite
import Stats
import TimeSeries

/// One setting of the collector, declared once: its key (the option name, the config-file key
/// and, upper-cased with a `FLASHBACK_` prefix, the environment variable), its default (taken
/// from the settings type that owns it, so the number is written in one place) and its help
/// text, which `--help` shows with the default and the environment name filled in.
///
/// Resolution order: flag > environment > config file > default (``SettingsSource``).
struct Setting<Value: Sendable>: Sendable {
    /// The option name without dashes in front, e.g. `data-dir`.
    let key: String
    let defaultValue: Value
    /// What the setting does, one sentence without the default.
    let summary: String
    /// How `--help` shows the default.
    let shownDefault: String

    init(_ key: String, default value: Value, _ summary: String, shown: String? = nil) {
        self.key = key
        self.defaultValue = value
        self.summary = summary
        self.shownDefault = shown ?? "\(value)"
    }

    /// `FLASHBACK_DATA_DIR` for `data-dir`.
    var environmentName: String {
        "FLASHBACK_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The `--help` text: the summary, the default and the environment variable.
    var help: ArgumentHelp {
        ArgumentHelp("\(summary) (default: \(shownDefault); env \(environmentName)).")
    }
}

extension Setting where Value == String? {
    /// A setting without a default (`nil` when no source sets it).
    init(_ key: String, _ summary: String, shown: String = "none") {
        self.init(key, default: nil, summary, shown: shown)
    }
}

/// Every setting of `serve` (and those `token` shares), with its default from the type that
/// owns it.
enum Settings {
    // MARK: Files and listeners
    static let config = Setting<String?>("config", "JSON config file; its keys are the option names")
    static let dataDir = Setting("data-dir", default: "./data", "Data directory: RocksDB, master key, JWT secret")
    static let httpAddress = Setting("http-address", default: "127.0.0.1:8080", "HTTP listen address host:port")
    static let udpAddress = Setting("udp-address", default: "127.0.0.1:8089", "UDP listen address host:port")
    static let udpReceiveBuffer = Setting("udp-receive-buffer", default: UDPListener.defaultReceiveBufferBytes, "UDP receive buffer in bytes")
    static let udpAuth = Setting<String?>(
        "udp-auth",
        "UDP authentication: hmac (each datagram starts with '#fb1 <nodeId> <unix-seconds> <base64 HMAC-SHA256(nodeToken, rest)>') or none",
        shown: "none on a loopback address, hmac otherwise")
    static let udpOrganization = Setting(
        "udp-organization", default: "", "Organization that datagrams without an #fb1 header are stored for when --udp-auth is none",
        shown: "none, i.e. public data")

    // MARK: Line protocol and ingest
    static let maxLineLength = Setting("max-line-length", default: LineLimits().maxLineLength,
                                       "Longest accepted line-protocol line in bytes; longer lines are refused")
    static let maxTagsPerSeries = Setting("max-tags-per-series", default: LineLimits().maxTagsPerSeries,
                                          "Most tags on one line-protocol line; lines with more are refused")
    static let maxBodySize = Setting("max-body-size", default: CollectorRequestContext.defaultBodyLimit,
                                     "Largest request body in bytes, also after gzip decompression")
    static let maxInflightBytes = Setting("max-inflight-bytes", default: IngestAdmission.defaultLimit,
                                          "Bytes of ingest requests in flight before new ones get 503 + Retry-After")
    static let maxSampleAge = Setting("max-sample-age", default: Int(TimeSeriesSettings().maxSampleAge),
                                      "Oldest accepted sample in seconds before now", shown: "172800 = 48 h")
    static let maxSeriesPerOrg = Setting("max-series-per-org", default: TimeSeriesSettings().maxSeriesPerOrganization,
                                         "Series per organization; only new series beyond it are refused")
    static let maxFieldsPerOrg = Setting(
        "max-fields-per-org", default: TimeSeriesSettings().maxFieldsPerOrganization,
        "Distinct field names per organization; only new names beyond it are refused, so no tenant can fill the shared 65535-name field dictionary")
    static let flushIntervalMs = Setting(
        "flush-interval-ms", default: Int(TimeSeriesSettings().flushInterval / .milliseconds(1)),
        "Longest wait of an accepted sample in memory before it is merged into its block, in milliseconds; the ingest log keeps it durable meanwhile")
    static let syncWrites = Setting("sync-writes", default: false, "Fsync every acknowledged write: survives power loss, not only process crashes")

    // MARK: Retention
    static let retentionMinute = Setting("retention-minute", default: Int(TimeSeriesStore.defaultMinuteRetention),
                                         "How long samples and minute rollups are kept, in seconds", shown: "3024000 = 35 days")
    static let retentionDay = Setting("retention-day", default: Int(TimeSeriesStore.defaultDayRetention),
                                      "How long sealed day rollups are kept, in seconds", shown: "69120000 = 800 days")
    static let retentionInterval = Setting("retention-interval", default: 6 * 3600, "Seconds between forced retention compactions",
                                           shown: "21600 = 6 h")

    // MARK: Logs
    static let logFormat = Setting("log-format", default: "text", "Log format: text or json")
    static let logLevel = Setting("log-level", default: "info", "Log level: trace, debug, info, notice, warning, error, critical")

    // MARK: Keys and tokens
    static let jwtSecret = Setting<String?>("jwt-secret", "HS256 secret for user tokens", shown: "generated into DATA_DIR/jwt.secret")
    static let jwtPublicKey = Setting<String?>("jwt-public-key", "PEM public key file (RS256, ES256 or EdDSA) of an external token issuer")
    static let masterKeyFile = Setting<String?>("master-key-file", "File with the 32-byte master key sealing secrets at rest",
                                                shown: "DATA_DIR/master.key, created 0600")
    static let platformPublicKey = Setting<String?>("platform-public-key",
                                                    "PEM RSA public key file verifying public nodes that register without id_org")
    static let metricsToken = Setting<String?>("metrics-token", "Bearer token Prometheus must send to scrape /metrics", shown: "none, open")
    static let adminTokenFile = Setting<String?>(
        "admin-token-file", "File holding the bearer token (16 characters or more) of /admin/*, used by online backups",
        shown: "none, /admin/* answers 404")

    // MARK: Node bootstrap (POST /secrets)
    static let nodeEnvDir = Setting<String?>(
        "node-env-dir",
        "Directory of the env files POST /secrets serves to installing nodes: DIR/<org>/<service>.env, else DIR/<service>.env (services s3, gcs, blob)",
        shown: "none, /secrets answers 404")
    static let publicURL = Setting<String?>(
        "public-url", "The collector's base URL as nodes reach it, filled into env files as ${FLASHBACK_PUBLIC_URL} and the URLs under it",
        shown: "http://HTTP_ADDRESS")
    static let nodeEnvPlaintext = Setting(
        "node-env-plaintext", default: false,
        "Serve env files in Base64 (env_<svc>) instead of sealed to the requesting organization's key (env_<svc>_enc)")

    static let nodeDomain = Setting<String?>(
        "node-domain", "Domain of the nodes' hosts: a node registering without a url gets --node-url-template filled with it",
        shown: "none, https://<ip>")
    static let nodeURLTemplate = Setting(
        "node-url-template", default: NodeURLTemplate.installerDefault,
        "URL of a node registering without one, over {region}, {provider}, {-provider}, {domain}, {ip} (the installer's SELF_URL)")

    // MARK: Registry
    static let maxOrgKeys = Setting("max-org-keys", default: RegistrySettings().maxKeysPerOrganization, "Most keys per organization")
    static let signatureWindow = Setting("signature-window", default: Int(RegistrySettings().signatureWindow),
                                         "Accepted clock skew of signed node messages in seconds, either way")
    static let nodeOfflineAfter = Setting("node-offline-after", default: Int(LivenessPolicy().offlineAfter),
                                          "Seconds of silence after which a node is OFFLINE")
    static let nodeDisconnectedAfter = Setting("node-disconnected-after", default: Int(LivenessPolicy().disconnectedAfter),
                                               "Seconds of silence after which a node is DISCONNECTED")

    // MARK: Cluster mode
    static let registryURL = Setting<String?>(
        "registry-url",
        "PostgreSQL shared by collector replicas for keys, nodes, buckets, repositories and repo keys (cluster mode): postgres://user[:password]@host:port/database[?sslmode=disable|prefer|require|verify-full&sslrootcert=FILE]",
        shown: "none, the embedded RocksDB")
    static let registryTimeout = Setting("registry-timeout", default: 5,
                                         "Seconds a control-plane database operation may take before it fails as unavailable (HTTP 503)")
    static let registryRefreshInterval = Setting(
        "registry-refresh-interval", default: 30,
        "Seconds between full reloads of a replica's control-plane cache; change notifications refresh it at once, this is the fallback")

    // MARK: Remote write
    static let remoteWriteURL = Setting<[String]>(
        "remote-write-url", default: [],
        "Prometheus remote_write 1.0 receiver every accepted sample is forwarded to (repeatable; comma-separated in the environment); basic auth as http(s)://user:password@host/…",
        shown: "none")
    static let remoteWriteBearerTokenFile = Setting<String?>(
        "remote-write-bearer-token-file", "File holding a bearer token sent to every remote-write receiver")
    static let remoteWriteHeader = Setting<[String]>(
        "remote-write-header", default: [], "Extra 'Name: value' header sent to every remote-write receiver, e.g. 'X-Scope-OrgID: fleet' (repeatable)",
        shown: "none")
    static let remoteWriteMaxBacklog = Setting(
        "remote-write-max-backlog", default: TimeSeriesSettings().remoteWriteMaxBacklogBytes,
        "Bytes a receiver may have queued in the outbox; beyond it writes are refused with 503 until it drains", shown: "1073741824 = 1 GiB")
    static let remoteWriteTimeout = Setting("remote-write-timeout", default: 30, "Seconds one remote-write request may take before it is retried")
    static let remoteWriteMaxSamples = Setting("remote-write-max-samples", default: RemoteWriteSettings().maxSamplesPerRequest,
                                               "Most samples per remote-write request")

    static let statsSource = Setting<String?>(
        "stats-source",
        "Prometheus query API the stats are read from in cluster mode (the TSDB remote write fills: VictoriaMetrics http://host:8428, vmselect …/select/0/prometheus, Mimir …/prometheus, Thanos Query, Prometheus); basic auth as http(s)://user:password@host/…; several comma-separated URLs for an HA pair answering for the same data (the first preferred; a connection error, timeout or 5xx moves to the next)",
        shown: "none, the local store")
    static let statsSealAfter = Setting(
        "stats-seal-after", default: 0,
        "Seconds after its end a day is sealed in cluster mode: stats read its rollups from the replica's cache (data-dir/stats-cache), and a replica that forwards samples of an older day marks it so readers read it again; give every replica the same value; shorter than a replica's --max-sample-age costs re-reads of the days it marks",
        shown: "0 = max-sample-age + 3600")
    static let statsAnswerTTL = Setting(
        "stats-answer-ttl", default: 10,
        "Seconds a cluster-mode stats answer from the TSDB is used again (open days, minute rows, newest samples; refreshed in the background when stale); 0 asks the TSDB on every request")
    static let statsSourceBearerTokenFile = Setting<String?>("stats-source-bearer-token-file", "File holding a bearer token sent to the stats source")
    static let statsSourceHeader = Setting<[String]>(
        "stats-source-header", default: [], "Extra 'Name: value' header sent to the stats source, e.g. 'X-Scope-OrgID: fleet' (repeatable)", shown: "none")

    // MARK: Stats
    static let statsMaxMinuteRange = Setting("stats-max-minute-range", default: Int(StatsSettings().maxMinuteRange),
                                             "Longest range of minute rows one stats request may ask for, in seconds", shown: "604800 = 7 days")
    static let statsMaxDayRange = Setting("stats-max-day-range", default: Int(StatsSettings().maxDayRange),
                                          "Longest range of day rows one stats request may ask for, in seconds", shown: "34560000 = 400 days")
    static let statsMaxRows = Setting("stats-max-rows", default: StatsSettings().maxRows,
                                      "Most rows one stats answer may hold; larger answers are refused with 400")

    // MARK: Bucket validation
    static let validateAllowPrivate = Setting(
        "validate-allow-private", default: false,
        "Let bucket validation reach loopback, link-local and private addresses (S3-compatible services on a private network)")
    static let stsEndpoint = Setting("sts-endpoint", default: STSSettings.defaultEndpoint,
                                     "STS endpoint for assuming the roles of delegated S3 buckets (role ARN as key, external id as secret)")
    static let awsAccessKeyID = Setting<String?>("aws-access-key-id", "The collector's own AWS access key id, which assumes delegated roles",
                                                 shown: "none, delegated buckets are refused")
    static let awsSecretAccessKey = Setting<String?>("aws-secret-access-key", "The collector's own AWS secret access key (prefer the environment)")
    static let gcsTokenURL = Setting("gcs-token-url", default: GCSEndpoints.googleTokenURL,
                                     "OAuth2 token endpoint for GCS service-account credentials (client email as key, PEM private key as secret)")
    static let gcsAPIURL = Setting("gcs-api-url", default: GCSEndpoints.googleAPIURL, "GCS JSON API base URL for service-account credentials")
    static let validateAllowHost = Setting<String?>(
        "validate-allow-host", "Comma-separated hosts that bucket validation may reach whatever they resolve to, e.g. minio.internal")
}

/// Options `serve` and `token` share: where the configuration and the data are.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: Settings.config.help)
    var config: String?

    @Option(name: .long, help: Settings.dataDir.help)
    var dataDir: String?

    @Option(name: .long, help: Settings.jwtSecret.help)
    var jwtSecret: String?
}

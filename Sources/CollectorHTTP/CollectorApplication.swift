import Catalog
import CollectorAuth
import CollectorStore
import Foundation
import Hummingbird
import IngestMapping
import Ingestion
import Logging
import NIOCore
import Registry
import Exposition
import ServiceLifecycle
import Stats
import TimeSeries

/// Builds the collector's HTTP application: routes, middleware and listener.
///
/// Everything a route needs arrives through ``Dependencies``; the builder holds no global state,
/// so tests build the same application in-process (HummingbirdTesting) with a temporary store.
public enum CollectorApplication {
    /// What the routes use.
    public struct Dependencies: Sendable {
        public var storage: CollectorStorage
        public var tokens: TokenAuthority
        public var registry: NodeRegistry
        public var catalog: StorageCatalog
        public var timeSeries: TimeSeriesStore
        /// The one ingest writer (HTTP, UDP and node reports share it, and its series memo).
        public var ingest: IngestWriter
        /// Bytes of ingest requests in flight (`--max-inflight-bytes`).
        public var admission: IngestAdmission
        public var validator: BucketValidator
        public var readiness: ServiceReadiness
        public var version: String
        public var clock: @Sendable () -> Date
        /// Stats query limits (`--stats-max-*`); the liveness thresholds come from the registry.
        public var statsSettings: StatsSettings
        /// The swift-metrics backend `/metrics` exports (the one `metrics` records into).
        public var metricsRegistry: MetricsRegistry
        /// `--metrics-token`: when set, scrapes must send it as a Bearer token.
        public var metricsToken: String?
        /// The env files `POST /secrets` serves (`--node-env-dir`); `nil` answers 404.
        public var nodeEnvironment: NodeEnvironmentSource?
        /// `--node-env-plaintext`: serve env files in Base64 instead of sealed to the node's key.
        public var nodeEnvironmentPlaintext: Bool
        /// The shared control-plane database in cluster mode; `nil` for the embedded store.
        public var controlPlane: ControlPlaneHealth?
        /// Where the stats read (`--stats-source`, a cluster TSDB); `nil`: the local store.
        public var statsSource: (any RollupSource)?
        /// `/admin/*` (`--admin-token-file`): the token and the checkpoints of online backups;
        /// `nil` answers 404.
        public var admin: (token: String, checkpoints: Checkpoints)?

        /// A `Dependencies` from its parts.
        public init(
            storage: CollectorStorage, tokens: TokenAuthority, registry: NodeRegistry, catalog: StorageCatalog,
            timeSeries: TimeSeriesStore, syncWrites: Bool = false, admission: IngestAdmission = IngestAdmission(),
            validator: BucketValidator = BucketValidator(), readiness: ServiceReadiness, version: String,
            clock: @escaping @Sendable () -> Date = { Date() }, memo: SeriesMemo = SeriesMemo(),
            metrics: IngestMetrics = IngestMetrics(), lineLimits: LineLimits = LineLimits(),
            statsSettings: StatsSettings = StatsSettings(), metricsRegistry: MetricsRegistry = MetricsRegistry(), metricsToken: String? = nil,
            nodeEnvironment: NodeEnvironmentSource? = nil, nodeEnvironmentPlaintext: Bool = false, controlPlane: ControlPlaneHealth? = nil,
            statsSource: (any RollupSource)? = nil, admin: (token: String, checkpoints: Checkpoints)? = nil
        ) {
            self.storage = storage
            self.tokens = tokens
            self.registry = registry
            self.catalog = catalog
            self.timeSeries = timeSeries
            self.ingest = IngestWriter(store: timeSeries, nodes: registry, syncWrites: syncWrites, metrics: metrics, memo: memo,
                                       lineLimits: lineLimits, now: clock)
            self.admission = admission
            self.validator = validator
            self.readiness = readiness
            self.version = version
            self.clock = clock
            self.statsSettings = statsSettings
            self.metricsRegistry = metricsRegistry
            self.metricsToken = metricsToken
            self.nodeEnvironment = nodeEnvironment
            self.nodeEnvironmentPlaintext = nodeEnvironmentPlaintext
            self.controlPlane = controlPlane
            self.statsSource = statsSource
            self.admin = admin
        }
    }

    /// The router with every route of the collector.
    public static func makeRouter(_ dependencies: Dependencies) -> Router<CollectorRequestContext> {
        let router = Router(context: CollectorRequestContext.self)
        dependencies.metricsRegistry.describe(RequestMetricsMiddleware<CollectorRequestContext>.name,
                                              RequestMetricsMiddleware<CollectorRequestContext>.help)
        router.add(middleware: RequestMetricsMiddleware(factory: dependencies.metricsRegistry))
        router.add(middleware: APIErrorMiddleware())
        HealthRoutes(readiness: dependencies.readiness, version: dependencies.version, controlPlane: dependencies.controlPlane).register(on: router)
        let authentication = CallerAuthentication(registry: dependencies.registry, tokens: dependencies.tokens)
        let registryRoutes = RegistryRoutes(registry: dependencies.registry, authentication: authentication)
        registryRoutes.registerPublic(on: router)
        SecretsRoutes(registry: dependencies.registry, environment: dependencies.nodeEnvironment,
                      plaintext: dependencies.nodeEnvironmentPlaintext).register(on: router)
        let ingest = IngestRoutes(writer: dependencies.ingest,
                                  stream: IngestStream(admission: dependencies.admission, metrics: dependencies.ingest.metrics),
                                  authentication: authentication)
        ingest.register(on: router)
        NodeReportRoutes(registry: dependencies.registry, ingest: ingest).register(on: router)
        RollupRoutes(source: dependencies.timeSeries, authentication: authentication, now: dependencies.clock).register(on: router)

        let authenticated = router.group().add(middleware: TokenAuthMiddleware(authentication: authentication))
            .add(middleware: ReadBarrierMiddleware(registry: dependencies.registry, catalog: dependencies.catalog))
        IdentityRoutes().register(on: authenticated)
        registryRoutes.registerAuthenticated(on: authenticated)
        CatalogRoutes(catalog: dependencies.catalog, validator: dependencies.validator).register(on: authenticated)
        var statsSettings = dependencies.statsSettings
        statsSettings.liveness = dependencies.registry.settings.liveness
        let stats = FleetStats(store: dependencies.statsSource ?? dependencies.timeSeries, registry: dependencies.registry, catalog: dependencies.catalog, settings: statsSettings)
        StatsRoutes(stats: stats, now: dependencies.clock).register(on: authenticated)
        MetricsRoutes(registry: dependencies.metricsRegistry, stats: stats, storage: dependencies.storage, store: dependencies.timeSeries,
                      version: dependencies.version, token: dependencies.metricsToken, controlPlane: dependencies.controlPlane,
                      fleetFamilies: dependencies.statsSource == nil, now: dependencies.clock).register(on: router)

        if let admin = dependencies.admin {
            let registry = dependencies.registry
            AdminRoutes(checkpoints: admin.checkpoints, token: admin.token, beforeCheckpoint: { registry.persistLastHeard() },
                        now: dependencies.clock).register(on: router)
        }

        let nodes = router.group().add(middleware: NodeAuthMiddleware(authentication: authentication))
        AuthorizeRoutes(authorizer: RepoKeyAuthorizer(catalog: dependencies.catalog), now: dependencies.clock).register(on: nodes)
        return router
    }

    /// The HTTP application listening on `address`; it marks readiness once bound.
    public static func make(
        _ dependencies: Dependencies,
        address: ListenAddress,
        logger: Logger
    ) -> some ApplicationProtocol & Service {
        let readiness = dependencies.readiness
        return Application(
            router: makeRouter(dependencies),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port),
                serverName: "flashback-collector/\(dependencies.version)"),
            onServerRunning: { channel in
                readiness.markUp(.http)
                logger.info("HTTP listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "\(address)")"])
            },
            logger: logger)
    }
}

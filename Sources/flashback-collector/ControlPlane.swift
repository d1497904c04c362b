import Catalog
import CollectorHTTP
import CollectorStore
import ControlPlanePostgres
import Exposition
import Foundation
import Logging
import Registry
import ServiceLifecycle

/// The registry and catalog `serve` runs with: on the embedded RocksDB by default, or on the
/// PostgreSQL that collector replicas share (`--registry-url`), with what keeps that mode's
/// caches fresh (``ControlPlaneSync``) and its health for `/-/ready`, `/health` and `/metrics`.
///
/// As a service it runs the sync until graceful shutdown (then writes the buffered last-heard
/// times); ``stop()`` closes the connection pool after the service group has stopped.
final class ControlPlane: Service, Sendable {
    let registry: NodeRegistry
    let catalog: StorageCatalog
    let health: ControlPlaneHealth?
    private let sync: ControlPlaneSync?
    private let pool: Task<Void, Never>?

    private init(registry: NodeRegistry, catalog: StorageCatalog, health: ControlPlaneHealth?, sync: ControlPlaneSync?, pool: Task<Void, Never>?) {
        self.registry = registry
        self.catalog = catalog
        self.health = health
        self.sync = sync
        self.pool = pool
    }

    static func open(_ settings: ServeCommand.Resolved, storage: CollectorStorage, secrets: SecretBox, logger: Logger) async throws -> ControlPlane {
        guard let cluster = settings.cluster else {
            let registry = try NodeRegistry(storage: storage, secrets: secrets, settings: settings.registry, logger: logger)
            let catalog = try StorageCatalog(storage: storage, secrets: secrets, settings: CatalogSettings(),
                                             syncWrites: settings.registry.syncWrites, logger: logger)
            return ControlPlane(registry: registry, catalog: catalog, health: nil, sync: nil, pool: nil)
        }
        let database = try ControlPlaneDatabase(url: cluster.url, timeout: cluster.timeout, logger: logger)
        let pool = Task { await database.run() }
        do {
            let applied = try await database.migrate()
            logger.info("control-plane database ready", metadata: ["url": "\(cluster.url)", "migrations_applied": "\(applied)"])
            let registryStore = PostgresRegistryStore(database: database)
            let registry = try await NodeRegistry.open(store: registryStore, secrets: secrets, settings: settings.registry, logger: logger)
            let catalogStore = PostgresCatalogStore(database: database)
            let catalog = try await StorageCatalog.open(store: catalogStore, secrets: secrets, logger: logger)
            let sync = ControlPlaneSync(database: database, registry: registry, catalog: catalog, registryStore: registryStore,
                                        catalogStore: catalogStore, refreshInterval: cluster.refreshInterval, logger: logger)
            sync.attach()
            let health = ControlPlaneHealth(isAvailable: { database.isAvailable }, metricFamilies: { Self.families(database, sync) })
            return ControlPlane(registry: registry, catalog: catalog, health: health, sync: sync, pool: pool)
        } catch let error as SchemaTooNewError {
            pool.cancel()
            throw error
        } catch {
            pool.cancel()
            throw ControlPlaneStartupError(description: "cannot use the control-plane database at \(cluster.url): \(ControlPlaneDatabase.describe(error))")
        }
    }

    func run() async throws {
        guard let sync else {
            try? await gracefulShutdown()
            return
        }
        await cancelWhenGracefulShutdown { await sync.run() }
    }

    /// Closes the connection pool (after the service group has stopped).
    func stop() {
        pool?.cancel()
    }

    static func families(_ database: ControlPlaneDatabase, _ sync: ControlPlaneSync) -> [MetricFamily] {
        [
            .gauge("flashback_registry_up", "1 when the last control-plane database operations succeeded (cluster mode).",
                   [([], database.isAvailable ? 1 : 0)]),
            .counter("flashback_registry_unavailable_total", "Control-plane database operations that failed as unavailable (refused, lost, timed out).",
                     [([], Double(database.unavailableCount))]),
            .gauge("flashback_registry_listening", "1 while this replica receives the control plane's change notifications.",
                   [([], sync.isListening ? 1 : 0)]),
            .counter("flashback_registry_notifications_total", "Control-plane change notifications received.",
                     [([], Double(sync.notificationsReceived))]),
            .counter("flashback_registry_reloads_total", "Reloads of this replica's control-plane cache.",
                     ControlPlaneSync.Cache.allCases.map { ([MetricSample.Label("cache", $0.rawValue)], Double(sync.reloads($0))) }),
        ]
    }
}

/// The control-plane database could not be used at start.
struct ControlPlaneStartupError: Error, CustomStringConvertible {
    let description: String
}

import Catalog
import CollectorModel
import Foundation
import Logging
import PostgresNIO
import Registry
import Synchronization

/// Keeps one collector replica's registry and catalog caches in step with the shared
/// PostgreSQL, and its buffered writes flowing there.
///
/// - **Notifications**: a connection `LISTEN`s on the change channel; every committed change to
///   a key, node, bucket, repository or repo key (by any replica) reloads the cache it belongs
///   to, coalesced: changes arriving during a reload cause one more reload, not one each. After
///   the listening connection is lost and regained, both caches reload (notifications may have
///   been missed in between). Reconnection backs off from 0.2 s to 5 s.
/// - **TTL**: both caches also reload every `refreshInterval`, whatever arrives.
/// - **Barrier**: ``barrier(_:)`` reads the change version (one small query) and reloads when
///   the cache holds an older one, so a read or a change sees everything committed before it,
///   through any replica. The registry and catalog call it before every mutation and before
///   management reads.
/// - **Misses**: a node token or access key id the cache does not know may be one another
///   replica created a moment ago; ``refreshAfterMiss(_:)`` runs the barrier, at most 20 times
///   a second per cache, so unknown credentials cannot turn into a query each.
/// - **Last-heard** times are written every `heardInterval` and at shutdown; expired replay
///   records are pruned once a minute.
public final class ControlPlaneSync: Sendable {
    /// Which cache.
    public enum Cache: String, Sendable, CaseIterable {
        case registry, catalog
    }

    private let database: ControlPlaneDatabase
    private let registry: NodeRegistry
    private let catalog: StorageCatalog
    private let registryStore: PostgresRegistryStore
    private let catalogStore: PostgresCatalogStore
    private let refreshInterval: Duration
    private let heardInterval: Duration
    private let logger: Logger
    private let reloaders: [Cache: Reloader]
    private let listening = Atomic<Bool>(false)
    private let notificationCount = Atomic<Int>(0)
    private let missBudget = Mutex<[Cache: (windowStart: ContinuousClock.Instant, used: Int)]>([:])
    /// Barrier checks a miss may cause per second and cache.
    static let missesPerSecond = 20

    /// A sync over `database` for these caches (built over its stores).
    public init(database: ControlPlaneDatabase, registry: NodeRegistry, catalog: StorageCatalog, registryStore: PostgresRegistryStore,
                catalogStore: PostgresCatalogStore, refreshInterval: Duration = .seconds(30), heardInterval: Duration = .seconds(5), logger: Logger) {
        self.database = database
        self.registry = registry
        self.catalog = catalog
        self.registryStore = registryStore
        self.catalogStore = catalogStore
        self.refreshInterval = refreshInterval
        self.heardInterval = heardInterval
        self.logger = logger
        reloaders = [
            .registry: Reloader(name: "registry", logger: logger) { try await registry.reload() },
            .catalog: Reloader(name: "catalog", logger: logger) { try await catalog.reload() },
        ]
    }

    /// Whether the change notifications are being received now.
    public var isListening: Bool { listening.load(ordering: .relaxed) }

    /// Change notifications received since start.
    public var notificationsReceived: Int { notificationCount.load(ordering: .relaxed) }

    /// Reloads done per cache since start.
    public func reloads(_ cache: Cache) -> Int { reloaders[cache]?.completed ?? 0 }

    /// Runs until cancelled: listening, periodic reloads, last-heard writes. Writes the
    /// buffered last-heard times once more on the way out.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.refreshPeriodically() }
            group.addTask { await self.writeHeardPeriodically() }
            await group.waitForAll()
        }
        // Not as part of the cancelled task: the write must still get its full deadline.
        let registryStore = registryStore
        let final = Task { try await registryStore.flushLastHeard() }
        do {
            try await final.value
        } catch {
            logger.warning("last-heard times not written at shutdown", metadata: ["error": "\(ControlPlaneDatabase.describe(error))"])
        }
    }

    /// Attaches the barrier and the miss refresh to the registry and the catalog.
    public func attach() {
        registry.useSharedStore(SharedStoreHooks(barrier: { await self.barrier(.registry) }, afterMiss: { await self.refreshAfterMiss(.registry) }))
        catalog.useSharedStore(SharedStoreHooks(barrier: { await self.barrier(.catalog) }, afterMiss: { await self.refreshAfterMiss(.catalog) }))
    }

    /// Returns once `cache` holds every change committed before the call: reloads when the
    /// database's change version is newer than the one the cache was loaded at. While the
    /// database is known to be unreachable, or does not answer within a second, it returns (the
    /// cache serves as it is, and a change then fails on its own write rather than waiting twice).
    public func barrier(_ cache: Cache) async {
        // A short deadline: a change behind it still has its own full one for its write.
        let deadline = min(database.timeout, .seconds(1))
        guard database.isAvailable, let current = try? await database.changeVersion(cache: cache.rawValue, timeout: deadline) else { return }
        let loaded = cache == .registry ? registryStore.loadedVersion : catalogStore.loadedVersion
        if current > loaded { await reloaders[cache]?.reloadAndWait() }
    }

    /// The barrier for a credential the cache did not know, within ``missesPerSecond``.
    public func refreshAfterMiss(_ cache: Cache) async {
        let now = ContinuousClock.now
        let allowed = missBudget.withLock { budget -> Bool in
            var entry = budget[cache] ?? (now, 0)
            if now - entry.windowStart >= .seconds(1) { entry = (now, 0) }
            guard entry.used < Self.missesPerSecond else { return false }
            entry.used += 1
            budget[cache] = entry
            return true
        }
        if allowed { await barrier(cache) }
    }

    /// Reloads `cache` now (after any reload in progress) and returns when done.
    public func reload(_ cache: Cache) async {
        await reloaders[cache]?.reloadAndWait()
    }

    private func listen() async {
        var backoff = Duration.milliseconds(200)
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    try await connection.listen(on: Schema.changeChannel) { notifications in
                        self.listening.store(true, ordering: .relaxed)
                        backoff = .milliseconds(200)
                        // What changed while nobody listened is unknown: reload both.
                        for cache in Cache.allCases { self.reloaders[cache]?.request() }
                        for try await notification in notifications {
                            self.notificationCount.add(1, ordering: .relaxed)
                            self.reloaders[notification.payload.hasPrefix("catalog_") ? .catalog : .registry]?.request()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                let reason = ControlPlaneDatabase.describe(error)
                database.noteUnreachable("the notification connection was lost: \(reason)")
                logger.warning("control-plane change notifications lost; reconnecting", metadata: ["error": "\(reason)", "retry_in": "\(backoff)"])
            }
            listening.store(false, ordering: .relaxed)
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(5))
        }
        listening.store(false, ordering: .relaxed)
    }

    private func refreshPeriodically() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: refreshInterval)
            if Task.isCancelled { break }
            for cache in Cache.allCases { reloaders[cache]?.request() }
        }
    }

    private func writeHeardPeriodically() async {
        var lastPrune = ContinuousClock.now
        while !Task.isCancelled {
            try? await Task.sleep(for: heardInterval)
            if Task.isCancelled { break }
            do {
                try await registryStore.flushLastHeard()
                if ContinuousClock.now - lastPrune > .seconds(60) {
                    try await registryStore.pruneSignatures(now: Date())
                    lastPrune = ContinuousClock.now
                }
            } catch {
                logger.debug("last-heard write deferred", metadata: ["error": "\(ControlPlaneDatabase.describe(error))"])
            }
        }
    }
}

/// Runs one cache's reloads one at a time, coalescing requests that arrive during a reload.
final class Reloader: Sendable {
    private struct State {
        var running = false
        var pending = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var completed = 0
    }

    private let name: String
    private let logger: Logger
    private let body: @Sendable () async throws -> Void
    private let state = Mutex(State())

    init(name: String, logger: Logger, _ body: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.logger = logger
        self.body = body
    }

    var completed: Int { state.withLock { $0.completed } }

    /// Asks for a reload; returns at once.
    func request() {
        if startOrMarkPending(waiter: nil) { Task { await self.loop() } }
    }

    /// Returns after a reload that started after this call.
    func reloadAndWait() async {
        await withCheckedContinuation { continuation in
            if startOrMarkPending(waiter: continuation) { Task { await self.loop() } }
        }
    }

    /// `true` when the caller must start the loop; otherwise the running loop goes round again.
    private func startOrMarkPending(waiter: CheckedContinuation<Void, Never>?) -> Bool {
        state.withLock { state in
            if let waiter { state.waiters.append(waiter) }
            if state.running {
                state.pending = true
                return false
            }
            state.running = true
            return true
        }
    }

    private func loop() async {
        while true {
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.pending = false
                defer { state.waiters.removeAll() }
                return state.waiters
            }
            do {
                try await body()
            } catch {
                logger.warning("control-plane cache reload failed; serving the previous copy", metadata: ["cache": "\(name)", "error": "\(ControlPlaneDatabase.describe(error))"])
            }
            let again = state.withLock { state -> Bool in
                state.completed += 1
                if state.pending { return true }
                state.running = false
                return false
            }
            for waiter in waiters { waiter.resume() }
            if !again { return }
        }
    }
}

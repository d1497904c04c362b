import Catalog
import CollectorStore
import ControlPlanePostgres
import Foundation
import Logging
import Registry

/// A database a store-contract suite runs against: it opens a store over the same durable data
/// again and again (each open sees what earlier ones wrote), as a restart or another collector
/// replica does. The contract suites take a list of them, so that a new backend joins by being
/// added to that list.
public protocol StoreBackend<Store>: Sendable {
    associatedtype Store
    /// Shown in the failures of the suite.
    var name: String { get }
    /// Several collectors use it at once, so it settles their races (``StoreError/conflict(_:)``).
    var isShared: Bool { get }
    /// A store over the backend's data (closing what an earlier open left open).
    func open() async throws -> Store
    /// Releases what the last open holds.
    func close()
    /// Closes, then removes the backend's data and stops what it runs; called once at the end.
    func discard()
}

/// The embedded backend: a RocksDB data directory of its own, closed and reopened between opens.
public final class RocksDBStoreBackend<Store>: StoreBackend, @unchecked Sendable {
    public let name = "rocksdb"
    public let isShared = false
    private let directory: TemporaryDirectory
    private let make: @Sendable (CollectorStorage) -> Store
    private var storage: CollectorStorage?

    /// A backend whose stores `make` builds over the opened storage.
    public init(prefix: String, make: @escaping @Sendable (CollectorStorage) -> Store) {
        directory = TemporaryDirectory(prefix: prefix)
        self.make = make
    }

    public func open() throws -> Store {
        close()
        let opened = try CollectorStorage.open(dataDirectory: directory.appending("data"), logger: Logger(label: "test"))
        storage = opened
        return make(opened)
    }

    public func close() {
        storage?.close()
        storage = nil
    }

    public func discard() {
        close()
    }
}

/// The cluster-mode backend: a throwaway PostgreSQL cluster (``PostgresServer``) started at the
/// first open; each open is a new connection pool over the migrated schema, as another replica
/// would open it.
public final class PostgresStoreBackend<Store>: StoreBackend, @unchecked Sendable {
    public let name = "postgresql"
    public let isShared = true
    private let make: @Sendable (ControlPlaneDatabase) -> Store
    private let lock = NSLock()
    private var server: PostgresServer?
    private var running: Task<Void, Never>?

    /// A backend whose stores `make` builds over the opened database.
    public init(make: @escaping @Sendable (ControlPlaneDatabase) -> Store) {
        self.make = make
    }

    public func open() async throws -> Store {
        close()
        let server: PostgresServer
        if let started = lock.withLock({ self.server }) {
            server = started
        } else {
            server = try await PostgresServer()
            lock.withLock { self.server = server }
        }
        // A generous deadline: the test suite runs many servers at once on two cores.
        let database = try ControlPlaneDatabase(url: try PostgresURL(server.url), timeout: .seconds(30), logger: Logger(label: "test"))
        let task = Task { await database.run() }
        lock.withLock { running = task }
        try await database.migrate()
        return make(database)
    }

    public func close() {
        lock.withLock { running.take() }?.cancel()
    }

    public func discard() {
        close()
        lock.withLock { server = nil }
    }
}

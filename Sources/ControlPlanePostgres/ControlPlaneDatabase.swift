import CollectorModel
import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// The control plane's PostgreSQL: a connection pool, the schema migrations, and the one place
/// its failures are classified (``StoreError``), with a deadline on every operation.
///
/// Run it (``run()``, a `ServiceLifecycle` service) for as long as the stores are used.
public final class ControlPlaneDatabase: Sendable {
    /// Where the database is, without the password.
    public let url: PostgresURL
    /// Every store operation either finishes within this or fails as ``StoreError/unavailable(_:)``.
    public let timeout: Duration
    let client: PostgresClient
    let logger: Logger
    private let health = Mutex(Health())

    private struct Health {
        var available = true
        var lastFailure: String?
        var failures = 0
    }

    /// A database at `url`; nothing connects before ``run()``.
    public init(url: PostgresURL, timeout: Duration = .seconds(5), maximumConnections: Int = 8, logger: Logger) throws {
        self.url = url
        self.timeout = timeout
        self.logger = logger
        client = PostgresClient(configuration: try Self.configuration(url, timeout: timeout, maximumConnections: maximumConnections), backgroundLogger: logger)
    }

    static func configuration(_ url: PostgresURL, timeout: Duration, maximumConnections: Int) throws -> PostgresClient.Configuration {
        var tls = TLSConfiguration.makeClientConfiguration()
        let mode: PostgresClient.Configuration.TLS
        switch url.tls {
        case .disable:
            mode = .disable
        case .prefer:
            tls.certificateVerification = .none
            mode = .prefer(tls)
        case .require:
            tls.certificateVerification = .none
            mode = .require(tls)
        case .verifyFull:
            if let path = url.rootCertificatePath { tls.trustRoots = .file(path) }
            mode = .require(tls)
        }
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: mode)
        configuration.options.connectTimeout = timeout
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 1
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(15))
        return configuration
    }

    /// Runs the pool until the task is cancelled.
    public func run() async {
        await client.run()
    }

    /// Whether the last operations reached the database.
    public var isAvailable: Bool { health.withLock { $0.available } }

    /// Operations that failed as unavailable since start.
    public var unavailableCount: Int { health.withLock { $0.failures } }

    /// Runs `operation` against the pool within ``timeout``. A connection failure, a timeout or a
    /// server that cannot take writes now (shutting down, read-only after a failover) becomes
    /// ``StoreError/unavailable(_:)``; a unique violation ``StoreError/conflict(_:)``.
    public func perform<T: Sendable>(_ what: String, timeout: Duration? = nil, _ operation: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = client
        do {
            let value = try await Self.withDeadline(timeout ?? self.timeout, what: what) { try await operation(client) }
            markAvailable()
            return value
        } catch let error as StoreError {
            if case .unavailable(let reason) = error { markUnavailable(reason) }
            throw error
        } catch let error as PSQLError {
            throw note(Self.classify(error, what: what))
        } catch let error as PostgresTransactionError {
            // What failed inside the transaction decides; a failed BEGIN or COMMIT is the
            // connection's failure.
            if let inner = error.closureError ?? error.beginError ?? error.commitError {
                if let inner = inner as? PSQLError { throw note(Self.classify(inner, what: what)) }
                throw inner
            }
            throw error
        }
    }

    /// Runs `body` in one read-only REPEATABLE READ transaction, after reading `cache`'s change
    /// version in the same snapshot: what `body` reads is exactly the state of that version.
    public func snapshot<T: Sendable>(_ what: String, cache: String, _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T) async throws -> (T, version: Int64) {
        try await transaction(what) { connection in
            let logger = connection.logger
            try await connection.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            let version = try await Self.changeVersion(connection, cache: cache)
            return (try await body(connection, logger), version)
        }
    }

    /// Runs `body` (writes to `cache`'s tables) in one transaction and tells the versions of
    /// `cache` before and after it: when `loaded` held the version before, a cache that applies
    /// this write is now at the version after, and `loaded` moves there, so a writer's own
    /// change does not make its next barrier reload.
    public func versionedWrite(_ what: String, cache: String, loaded: borrowing Atomic<Int64>,
                               _ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async throws {
        let (before, after) = try await transaction(what) { connection in
            // The lock on the row orders this write among every other write to the cache.
            var before: Int64 = 0
            for try await value in try await connection.query(
                "SELECT version FROM flashback_change_version WHERE cache = \(cache) FOR UPDATE", logger: connection.logger).decode(Int64.self) {
                before = value
            }
            try await body(connection)
            return (before, try await Self.changeVersion(connection, cache: cache))
        }
        _ = loaded.compareExchange(expected: before, desired: after, ordering: .acquiringAndReleasing)
    }

    /// How many keys, nodes, buckets, repositories and repo keys the database holds.
    public func entityCount() async throws -> Int {
        try await perform("count entities") { client in
            var count = 0
            let query: PostgresQuery = """
                SELECT (SELECT count(*) FROM registry_keys) + (SELECT count(*) FROM registry_nodes) + (SELECT count(*) FROM catalog_buckets)
                     + (SELECT count(*) FROM catalog_repositories) + (SELECT count(*) FROM catalog_repo_keys)
                """
            for try await value in try await client.query(query).decode(Int64.self) { count = Int(value) }
            return count
        }
    }

    /// The change version of `cache` (`registry` or `catalog`) now (see ``Schema``).
    public func changeVersion(cache: String, timeout: Duration? = nil) async throws -> Int64 {
        try await perform("read the change version", timeout: timeout) { client in
            try await client.withConnection { connection in try await Self.changeVersion(connection, cache: cache) }
        }
    }

    static func changeVersion(_ connection: PostgresConnection, cache: String) async throws -> Int64 {
        var version: Int64 = 0
        for try await value in try await connection.query(
            "SELECT version FROM flashback_change_version WHERE cache = \(cache)", logger: connection.logger).decode(Int64.self) {
            version = value
        }
        return version
    }

    private func note(_ classified: any Error) -> any Error {
        if case .unavailable(let reason)? = classified as? StoreError { markUnavailable(reason) } else { markAvailable() }
        return classified
    }

    /// Like ``perform(_:_:)`` inside one transaction.
    public func transaction<T: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let logger = logger
        return try await perform(what) { client in
            try await client.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    private func markAvailable() {
        let recovered = health.withLock { health in
            defer { health.available = true }
            return !health.available
        }
        if recovered { logger.notice("control-plane database reachable again", metadata: ["url": "\(url)"]) }
    }

    /// Records that the database was found unreachable outside ``perform(_:timeout:_:)`` (the
    /// notification connection dropped); the next successful operation clears it.
    public func noteUnreachable(_ reason: String) {
        markUnavailable(reason)
    }

    private func markUnavailable(_ reason: String) {
        let first = health.withLock { health in
            defer {
                health.available = false
                health.lastFailure = reason
                health.failures += 1
            }
            return health.available
        }
        if first { logger.error("control-plane database unavailable", metadata: ["url": "\(url)", "reason": "\(reason)"]) }
    }

    /// A PostgreSQL error for logs and messages: its code and the server's SQLSTATE and message,
    /// never the query or its values.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        var text = "\(error.code)"
        if let state = error.serverInfo?[.sqlState] { text += " \(state)" }
        if let message = error.serverInfo?[.message] { text += ": \(message)" }
        return text
    }

    static func classify(_ error: PSQLError, what: String) -> any Error {
        if error.code == .server, let state = error.serverInfo?[.sqlState] {
            if state == "23505" {
                return StoreError.conflict("\(what): \(error.serverInfo?[.constraintName] ?? "a unique constraint") already holds this value")
            }
            // 08: connection exception; 57P: operator intervention (shutdown); 53: insufficient
            // resources; 40001/40P01: serialization failure, deadlock; 25006: read-only (a standby).
            if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") || state == "40001" || state == "40P01" || state == "25006" {
                return StoreError.unavailable("\(what): the server answered \(state)")
            }
            return error
        }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown,
             .sslUnsupported, .failedToAddSSLHandler, .queryCancelled:
            return StoreError.unavailable("\(what): \(error.code)")
        default:
            return error
        }
    }

    /// `operation`'s result, or ``StoreError/unavailable(_:)`` once `timeout` has passed; the
    /// operation is cancelled then and its late result dropped, so no caller waits longer.
    static func withDeadline<T: Sendable>(_ timeout: Duration, what: String, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let race = DeadlineRace<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                race.start(continuation, timeout: timeout, what: what, operation)
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }
}

/// The first of an operation and its timer to finish answers the waiting caller; the other is
/// cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var finished: Result<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, timeout: Duration, what: String,
               _ operation: @escaping @Sendable () async throws -> T) {
        let early = state.withLock { state -> Result<T, any Error>? in
            if let finished = state.finished { return finished }
            state.continuation = continuation
            return nil
        }
        if let early {
            continuation.resume(with: early)
            return
        }
        let work = Task {
            let result: Result<T, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            self.finish(result)
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            self.finish(.failure(StoreError.unavailable("\(what) timed out after \(timeout)")))
        }
        let done = state.withLock { state in
            state.tasks = [work, timer]
            return state.finished != nil
        }
        if done {
            work.cancel()
            timer.cancel()
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) in
            guard state.finished == nil else { return (nil, []) }
            state.finished = result
            defer { state.continuation = nil }
            return (state.continuation, state.tasks)
        }
        for task in tasks { task.cancel() }
        continuation?.resume(with: result)
    }
}

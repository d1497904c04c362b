import ArgumentParser
import Catalog
import CollectorStore
import ControlPlanePostgres
import Foundation
import Logging
import Registry

/// `flashback-collector migrate-registry`: copies an embedded control plane (organization keys,
/// nodes, replay records, buckets, repositories, repo keys) from a stopped collector's data
/// directory into the PostgreSQL of cluster mode.
///
/// Records are copied as they are: secrets stay sealed with that data directory's master key,
/// which every replica must then use. Each entity is an upsert by id, so a run can be repeated
/// (after a failure, or with `--merge` over a target that already holds entities) and gives
/// the same result.
struct MigrateRegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-registry",
        abstract: "Copy an embedded registry and catalog into PostgreSQL for cluster mode (stop the collector first)."
    )

    @Option(name: .long, help: "The data directory of the embedded collector (stopped).")
    var from: String

    @Option(name: .long, help: "The control plane's PostgreSQL: postgres://user[:password]@host:port/database[?sslmode=...].")
    var to: String

    @Flag(name: .long, help: "Copy into a database that already holds entities (upsert by id) instead of refusing.")
    var merge = false

    func run() async throws {
        let url: PostgresURL
        do {
            url = try PostgresURL(to)
        } catch {
            throw ValidationError("--to: \(error.description)")
        }
        var logger = Logger(label: "flashback.migrate")
        logger.logLevel = .warning
        let storage = try CollectorStorage.open(dataDirectory: from, logger: logger)
        defer { storage.close() }
        let registry = try RocksDBRegistryStore(storage: storage).load(now: Date())
        let catalog = try RocksDBCatalogStore(storage: storage).load()

        let database = try ControlPlaneDatabase(url: url, timeout: .seconds(30), logger: logger)
        let pool = Task { await database.run() }
        defer { pool.cancel() }
        let applied = try await database.migrate()
        if !applied.isEmpty { print("schema: applied migrations \(applied.map(String.init).joined(separator: ", "))") }
        let present = try await database.entityCount()
        if present > 0, !merge {
            throw MigrationRefused(description: "\(url) already holds \(present) control-plane entities; pass --merge to copy into it (entities are upserted by id, so repeating a migration is safe)")
        }

        let registryStore = PostgresRegistryStore(database: database)
        let catalogStore = PostgresCatalogStore(database: database)
        let total = registry.keys.count + registry.nodes.count + registry.signatures.count
            + catalog.buckets.count + catalog.repositories.count + catalog.keys.count
        var progress = Progress(total: total)
        print("migrating \(total) entities from \(from) to \(url)")
        try await progress.run("organization keys", registry.keys) { try await registryStore.save($0) }
        try await progress.run("nodes", registry.nodes) { node in
            try await registryStore.save(node)
            registryStore.saveLastHeard(node)
        }
        try await registryStore.flushLastHeard()
        try await progress.run("replay records", registry.signatures) { _ = try await registryStore.recordSignature($0.fingerprint, until: $0.expiry) }
        try await progress.run("buckets", catalog.buckets) { try await catalogStore.save($0) }
        try await progress.run("repositories", catalog.repositories) { try await catalogStore.save($0) }
        try await progress.run("repo API keys", catalog.keys) { try await catalogStore.save($0) }
        print(String(format: "done: %d entities in %.1f s (%@). Run every replica with --registry-url and the master key of %@ (--master-key-file %@).",
                     total, progress.elapsed, progress.summary, from, from, (from as NSString).appendingPathComponent("master.key")))
    }

    /// Counts and prints as entities are copied.
    struct Progress {
        let total: Int
        var done = 0
        var parts: [String] = []
        let started = ContinuousClock.now

        var elapsed: Double {
            let duration = ContinuousClock.now - started
            return Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        }

        var summary: String { parts.joined(separator: ", ") }

        mutating func run<Entity: Sendable>(_ name: String, _ entities: [Entity], _ copy: (Entity) async throws -> Void) async throws {
            for (index, entity) in entities.enumerated() {
                do {
                    try await copy(entity)
                } catch {
                    throw MigrationRefused(description: "\(name) \(index + 1) of \(entities.count) could not be copied: \(error)")
                }
                done += 1
                if (index + 1) % 500 == 0 { print("  \(name): \(index + 1)/\(entities.count)  (all: \(done)/\(total))") }
            }
            print("  \(name): \(entities.count)/\(entities.count)  (all: \(done)/\(total))")
            parts.append("\(entities.count) \(name)")
        }
    }
}

/// The migration stopped; the message says why and what to do.
struct MigrationRefused: Error, CustomStringConvertible {
    let description: String
}

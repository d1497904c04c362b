import Catalog
import CollectorModel
import Foundation
import PostgresNIO
import Synchronization

/// The ``CatalogStore`` of cluster mode: buckets, repositories and repo API keys in PostgreSQL,
/// shared by every collector replica. Partial unique indexes keep one live bucket and one live
/// repository per name and organization, and one key per access key id, whichever replica
/// writes: the loser of a race gets ``StoreError/conflict(_:)``.
public final class PostgresCatalogStore: CatalogStore {
    private let database: ControlPlaneDatabase
    private let version = Atomic<Int64>(-1)

    /// The change version the last ``load()`` saw (-1 before the first).
    public var loadedVersion: Int64 { version.load(ordering: .acquiring) }

    /// The catalog tables of `database` (migrated by ``ControlPlaneDatabase/migrate()``).
    public init(database: ControlPlaneDatabase) {
        self.database = database
    }

    /// See ``CatalogStore``.
    public func load() async throws -> CatalogContents {
        let (contents, seen) = try await database.snapshot("load the catalog", cache: "catalog") { connection, logger in
            let decoder = JSONDecoder()
            var contents = CatalogContents()
            for try await record in try await connection.query("SELECT record::text FROM catalog_buckets", logger: logger).decode(String.self) {
                contents.buckets.append(try decoder.decode(StorageBucket.self, from: Data(record.utf8)))
            }
            for try await record in try await connection.query("SELECT record::text FROM catalog_repositories", logger: logger).decode(String.self) {
                contents.repositories.append(try decoder.decode(Repository.self, from: Data(record.utf8)))
            }
            for try await record in try await connection.query("SELECT record::text FROM catalog_repo_keys", logger: logger).decode(String.self) {
                contents.keys.append(try decoder.decode(RepoAPIKey.self, from: Data(record.utf8)))
            }
            return contents
        }
        version.store(seen, ordering: .releasing)
        return contents
    }

    /// See ``CatalogStore``.
    public func save(_ bucket: StorageBucket) async throws {
        let record = try Self.json(bucket)
        try await database.versionedWrite("save a bucket", cache: "catalog", loaded: version) { connection in
            try await connection.query("""
                INSERT INTO catalog_buckets (id, organization, name, deleted, record)
                VALUES (\(bucket.id), \(bucket.organization), \(bucket.name), \(bucket.isDeleted), \(record)::jsonb)
                ON CONFLICT (id) DO UPDATE SET organization = EXCLUDED.organization, name = EXCLUDED.name,
                    deleted = EXCLUDED.deleted, record = EXCLUDED.record
                """, logger: connection.logger)
        }
    }

    /// See ``CatalogStore``.
    public func save(_ repository: Repository) async throws {
        let query = try Self.upsert(repository)
        try await database.versionedWrite("save a repository", cache: "catalog", loaded: version) { connection in
            try await connection.query(query, logger: connection.logger)
        }
    }

    /// See ``CatalogStore``.
    public func save(_ key: RepoAPIKey) async throws {
        let query = try Self.upsert(key)
        try await database.versionedWrite("save a repo API key", cache: "catalog", loaded: version) { connection in
            try await connection.query(query, logger: connection.logger)
        }
    }

    /// See ``CatalogStore``.
    public func save(_ repository: Repository, keys: [RepoAPIKey]) async throws {
        let queries = try [Self.upsert(repository)] + keys.map(Self.upsert)
        try await database.versionedWrite("save a repository and its keys", cache: "catalog", loaded: version) { connection in
            for query in queries { try await connection.query(query, logger: connection.logger) }
        }
    }

    static func upsert(_ repository: Repository) throws -> PostgresQuery {
        let record = try json(repository)
        return """
            INSERT INTO catalog_repositories (id, organization, name, deleted, record)
            VALUES (\(repository.id), \(repository.organization), \(repository.name), \(repository.isDeleted), \(record)::jsonb)
            ON CONFLICT (id) DO UPDATE SET organization = EXCLUDED.organization, name = EXCLUDED.name,
                deleted = EXCLUDED.deleted, record = EXCLUDED.record
            """
    }

    static func upsert(_ key: RepoAPIKey) throws -> PostgresQuery {
        let record = try json(key)
        return """
            INSERT INTO catalog_repo_keys (id, repo_id, organization, access_key_id, deleted, record)
            VALUES (\(key.id), \(key.repoId), \(key.organization), \(key.accessKeyID), \(key.isDeleted), \(record)::jsonb)
            ON CONFLICT (id) DO UPDATE SET repo_id = EXCLUDED.repo_id, organization = EXCLUDED.organization,
                access_key_id = EXCLUDED.access_key_id, deleted = EXCLUDED.deleted, record = EXCLUDED.record
            """
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

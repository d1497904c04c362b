import CollectorStore
import Foundation
import RocksDB

/// The embedded ``CatalogStore``: JSON records in the `registry` column family, one key per
/// entity (`bucket/<id>`, `repo/<id>`, `repokey/<id>`), written with the WAL on.
public struct RocksDBCatalogStore: CatalogStore {
    private let database: Database
    private let family: ColumnFamily
    /// fsync every write (`--sync-writes`).
    private let sync: Bool

    static let bucketPrefix = Array("bucket/".utf8)
    static let repoPrefix = Array("repo/".utf8)
    static let keyPrefix = Array("repokey/".utf8)

    /// The catalog records in `storage`'s `registry` column family; `sync` fsyncs every write.
    public init(storage: CollectorStorage, sync: Bool = false) {
        database = storage.database
        family = storage.columnFamily(.registry)
        self.sync = sync
    }

    /// See ``CatalogStore``.
    public func load() throws -> CatalogContents {
        CatalogContents(buckets: try scan(Self.bucketPrefix), repositories: try scan(Self.repoPrefix), keys: try scan(Self.keyPrefix))
    }

    private func scan<T: Decodable>(_ prefix: [UInt8]) throws -> [T] {
        let decoder = JSONDecoder()
        var found: [T] = []
        try database.scan(family, lowerBound: prefix, upperBound: prefix.prefixUpperBound) { _, value in
            found.append(try decoder.decode(T.self, from: Data(value)))
            return true
        }
        return found
    }

    /// See ``CatalogStore``.
    public func save(_ bucket: StorageBucket) throws {
        try database.put(Self.bucketPrefix + Array(bucket.id.utf8), try JSONEncoder().encode(bucket), in: family, sync: sync)
    }

    /// See ``CatalogStore``.
    public func save(_ repository: Repository) throws {
        try database.put(Self.repoPrefix + Array(repository.id.utf8), try JSONEncoder().encode(repository), in: family, sync: sync)
    }

    /// See ``CatalogStore``.
    public func save(_ key: RepoAPIKey) throws {
        try database.put(Self.keyPrefix + Array(key.id.utf8), try JSONEncoder().encode(key), in: family, sync: sync)
    }

    /// See ``CatalogStore``.
    public func save(_ repository: Repository, keys: [RepoAPIKey]) throws {
        let batch = WriteBatch()
        let encoder = JSONEncoder()
        batch.put(Self.repoPrefix + Array(repository.id.utf8), try encoder.encode(repository), in: family)
        for key in keys { batch.put(Self.keyPrefix + Array(key.id.utf8), try encoder.encode(key), in: family) }
        try database.write(batch, sync: sync)
    }
}

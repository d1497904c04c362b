import Catalog
import CollectorModel
import CollectorStore
import CollectorTesting
import ControlPlanePostgres
import Foundation
import Logging
import Testing

/// The contract every ``CatalogStore`` keeps, run against each backend given to it: what is
/// saved is loaded back exactly, a save replaces, soft-deleted entries stay, and a repository
/// deleted with its keys is one atomic step.
@Suite("Catalog store contract")
struct CatalogStoreContractTests {
    /// Every implementation the suite runs against: the embedded one and cluster mode's.
    static func backends() -> [any StoreBackend<any CatalogStore>] {
        [
            RocksDBStoreBackend<any CatalogStore>(prefix: "catalog-store") { RocksDBCatalogStore(storage: $0) },
            PostgresStoreBackend<any CatalogStore> { PostgresCatalogStore(database: $0) },
        ]
    }

    /// The backends several collectors share, which settle races themselves.
    static func sharedBackends() -> [any StoreBackend<any CatalogStore>] {
        backends().filter(\.isShared)
    }

    static let created = Date(timeIntervalSince1970: 1_767_225_600)

    static func bucket(_ id: String, name: String = "primary") -> StorageBucket {
        StorageBucket(id: id, organization: "org-a", workspaceId: "ws-1", name: name, bucket: "provider-\(id)", storageType: .s3,
                      key: "AKIAEXAMPLE", sealedSecret: [1, 2, 3], endpoint: "https://s3.example.test", region: "eu-central-1",
                      createdAt: created)
    }

    static func repository(_ id: String) -> Repository {
        Repository(id: id, organization: "org-a", workspaceId: "ws-1", name: "repo-\(id)", storageType: .s3, mode: .normal,
                   buckets: [RepoBucketLink(folder: "", master: true, bucketId: "b1")], createdAt: created)
    }

    static func key(_ id: String, repo: String) -> RepoAPIKey {
        RepoAPIKey(id: id, repoId: repo, organization: "org-a", name: "key \(id)", accessType: .write, accessKeyID: "FB\(id)",
                   sealedSecret: [9, 8, 7], createdAt: created)
    }

    @Test(arguments: backends())
    func savedEntitiesLoadBackExactly(_ backend: any StoreBackend<any CatalogStore>) async throws {
        defer { backend.discard() }
        let empty = try await backend.open().load()
        #expect(empty.buckets.isEmpty && empty.repositories.isEmpty && empty.keys.isEmpty, "\(backend.name): a new store is empty")
        let store = try await backend.open()
        try await store.save(Self.bucket("b1"))
        try await store.save(Self.bucket("b2", name: "secondary"))
        try await store.save(Self.repository("r1"))
        try await store.save(Self.key("k1", repo: "r1"))
        let loaded = try await backend.open().load()
        #expect(loaded.buckets.sorted { $0.id < $1.id } == [Self.bucket("b1"), Self.bucket("b2", name: "secondary")], "\(backend.name)")
        #expect(loaded.repositories == [Self.repository("r1")], "\(backend.name)")
        #expect(loaded.keys == [Self.key("k1", repo: "r1")], "\(backend.name)")
    }

    @Test(arguments: backends())
    func aSaveReplacesAndSoftDeletesStay(_ backend: any StoreBackend<any CatalogStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        try await store.save(Self.bucket("b1"))
        var validated = Self.bucket("b1")
        validated.status = "ONLINE"
        validated.latencyMs = 42
        validated.lastStatusAt = Self.created.addingTimeInterval(60)
        try await store.save(validated)
        var deleted = Self.key("k1", repo: "r1")
        deleted.deletedAt = Self.created.addingTimeInterval(120)
        try await store.save(deleted)
        let loaded = try await backend.open().load()
        #expect(loaded.buckets == [validated], "\(backend.name): one record, the newer one")
        #expect(loaded.keys == [deleted], "\(backend.name): a soft-deleted key is kept with its deletion time")
    }

    @Test(arguments: backends())
    func aRepositoryAndItsKeysChangeTogether(_ backend: any StoreBackend<any CatalogStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        try await store.save(Self.repository("r1"))
        try await store.save(Self.key("k1", repo: "r1"))
        try await store.save(Self.key("k2", repo: "r1"))
        let at = Self.created.addingTimeInterval(300)
        var repo = Self.repository("r1")
        repo.deletedAt = at
        let revoked = ["k1", "k2"].map { id in
            var key = Self.key(id, repo: "r1")
            key.deletedAt = at
            return key
        }
        try await store.save(repo, keys: revoked)
        let loaded = try await backend.open().load()
        #expect(loaded.repositories == [repo], "\(backend.name)")
        #expect(loaded.keys.sorted { $0.id < $1.id } == revoked, "\(backend.name)")
    }

    /// Two collectors creating a bucket or repository of the same name at once, or a key with an
    /// access key id already used: the store refuses the second. A deleted one frees its name.
    @Test(arguments: sharedBackends())
    func namesAndAccessKeysAreTakenOnce(_ backend: any StoreBackend<any CatalogStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        try await store.save(Self.bucket("b1", name: "photos"))
        await #expect(throws: StoreError.self, "\(backend.name)") { try await store.save(Self.bucket("b2", name: "photos")) }
        var deleted = Self.bucket("b1", name: "photos")
        deleted.deletedAt = Self.created.addingTimeInterval(60)
        try await store.save(deleted)
        try await store.save(Self.bucket("b2", name: "photos"))

        try await store.save(Self.repository("r1"))
        var twin = Self.repository("r2")
        twin.name = Self.repository("r1").name
        await #expect(throws: StoreError.self, "\(backend.name)") { try await store.save(twin) }

        try await store.save(Self.key("k1", repo: "r1"))
        var sameAccessKey = Self.key("k2", repo: "r1")
        sameAccessKey.accessKeyID = Self.key("k1", repo: "r1").accessKeyID
        await #expect(throws: StoreError.self, "\(backend.name)") { try await store.save(sameAccessKey) }
        // A failed step of an atomic save leaves nothing behind.
        var revokedRepo = Self.repository("r1")
        revokedRepo.deletedAt = Self.created.addingTimeInterval(90)
        await #expect(throws: StoreError.self, "\(backend.name)") { try await store.save(revokedRepo, keys: [sameAccessKey]) }
        let loaded = try await backend.open().load()
        #expect(loaded.repositories == [Self.repository("r1")], "\(backend.name): the repository was not deleted without its keys")
        #expect(Set(loaded.buckets.map(\.id)) == ["b1", "b2"] && loaded.keys == [Self.key("k1", repo: "r1")], "\(backend.name)")
    }
}

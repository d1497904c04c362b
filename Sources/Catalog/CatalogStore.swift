/// Where the storage catalog keeps its entities: the operations ``StorageCatalog`` needs, not a
/// key-value API, so that another database can serve them without touching the service.
///
/// The service holds the catalog in memory and checks every rule (scopes, quotas, unique names)
/// there; a store only makes each change durable, atomically, before the service applies it. A
/// store shared by several collectors is the judge of races between them: it throws
/// ``StoreError/conflict(_:)`` when a change takes a name another collector's change already
/// took, and ``StoreError/unavailable(_:)`` when it cannot be reached.
/// Secrets reach a store sealed (``SecretBox``), never in plaintext.
public protocol CatalogStore: Sendable {
    /// Every bucket, repository and repo API key, including soft-deleted ones.
    func load() async throws -> CatalogContents
    /// Creates or replaces a bucket.
    func save(_ bucket: StorageBucket) async throws
    /// Creates or replaces a repository.
    func save(_ repository: Repository) async throws
    /// Creates or replaces a repo API key.
    func save(_ key: RepoAPIKey) async throws
    /// Replaces a repository and some of its keys in one atomic step (deleting a repository
    /// revokes its keys with it).
    func save(_ repository: Repository, keys: [RepoAPIKey]) async throws
}

/// Everything a ``CatalogStore`` holds.
public struct CatalogContents: Sendable {
    public var buckets: [StorageBucket]
    public var repositories: [Repository]
    public var keys: [RepoAPIKey]

    /// A `CatalogContents` from its parts.
    public init(buckets: [StorageBucket] = [], repositories: [Repository] = [], keys: [RepoAPIKey] = []) {
        self.buckets = buckets
        self.repositories = repositories
        self.keys = keys
    }
}

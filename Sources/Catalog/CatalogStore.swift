/// Where the storage catalog keeps its entities: the operations ``StorageCatalog`` needs, not a
/// key-value API, so that another database can serve them without touching the service.
///
/// The service holds the catalog in memory and checks every rule (scopes, quotas, unique names)
/// there; a store only makes each change durable, atomically, before the service applies it.
/// Secrets reach a store sealed (``SecretBox``), never in plaintext.
public protocol CatalogStore: Sendable {
    /// Every bucket, repository and repo API key, including soft-deleted ones.
    func load() throws -> CatalogContents
    /// Creates or replaces a bucket.
    func save(_ bucket: StorageBucket) throws
    /// Creates or replaces a repository.
    func save(_ repository: Repository) throws
    /// Creates or replaces a repo API key.
    func save(_ key: RepoAPIKey) throws
    /// Replaces a repository and some of its keys in one atomic step (deleting a repository
    /// revokes its keys with it).
    func save(_ repository: Repository, keys: [RepoAPIKey]) throws
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

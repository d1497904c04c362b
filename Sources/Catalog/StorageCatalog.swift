import CollectorModel
import CollectorStore
import Crypto
import Foundation
import Logging
import Synchronization

/// Who is asking: the organization and, when the token lists any, the workspaces it may see.
public struct CatalogScope: Sendable {
    public var organization: String
    /// Empty means every workspace of the organization.
    public var workspaces: [String]

    /// A `CatalogScope` from its parts.
    public init(organization: String, workspaces: [String]) {
        self.organization = organization
        self.workspaces = workspaces
    }

    /// Whether an entry of `organization` in `workspace` is visible to this scope.
    public func sees(organization: String, workspace: String) -> Bool {
        organization == self.organization && (workspaces.isEmpty || workspaces.contains(workspace))
    }
}

/// Whether a caller may see a catalog entry.
public enum CatalogVisibility: Sendable {
    case visible
    /// Another organization's or another workspace's.
    case hidden
    /// Not in the catalog.
    case unknown
}

/// The fields of a bucket as created or updated; `nil` leaves a field unchanged on update.
public struct BucketDraft: Sendable {
    public var name: String?
    public var bucket: String?
    public var storageType: StorageType?
    public var key: String?
    /// The provider secret in plaintext, sealed before it is stored.
    public var secret: String?
    public var endpoint: String?
    public var region: String?
    public var projectId: String?
    public var workspaceId: String?
    public var walletAddress: String?

    /// The defaults, as documented on each property.
    public init() {}
}

/// A repository as created or updated.
public struct RepositoryDraft: Sendable {
    public var name: String
    public var storageType: StorageType
    public var mode: RepoMode
    public var workspaceId: String
    public var buckets: [RepoBucketLink]
    public var walletAddress: String?

    /// A `RepositoryDraft` from its parts.
    public init(name: String, storageType: StorageType, mode: RepoMode, workspaceId: String, buckets: [RepoBucketLink], walletAddress: String?) {
        self.name = name
        self.storageType = storageType
        self.mode = mode
        self.workspaceId = workspaceId
        self.buckets = buckets
        self.walletAddress = walletAddress
    }
}

/// Quotas of the storage catalog.
public struct CatalogSettings: Sendable {
    /// Buckets per organization (`--max-buckets-per-org`).
    public var maxBucketsPerOrganization = 100
    /// Repositories per organization (`--max-repos-per-org`).
    public var maxReposPerOrganization = 100
    /// The defaults, as documented on each property.
    public init() {}
}

/// A repo API key found by its access key id, with what authorizing a request needs.
public struct ResolvedAPIKey: Sendable {
    public var key: RepoAPIKey
    public var secret: String
    public var repository: Repository
    public var buckets: [StorageBucket]
}

/// Buckets, repositories and repo storage API keys of every organization, persisted through a
/// ``CatalogStore`` (``RocksDBCatalogStore`` embedded) and mirrored in memory.
///
/// Every method takes the caller's ``CatalogScope``; an entity outside it answers "not found",
/// never its data. Role checks (who may change what) belong to the caller.
/// Thread-safety: `Sendable`; memory is behind one lock, and mutations run one at a time through
/// a ``SerialGate``: each checks its rules against memory, is made durable in the store, then
/// applied to memory. With a store shared by several collectors, memory is a cache that
/// ``reload()`` refreshes when another collector changed the store.
public final class StorageCatalog: Sendable {
    private struct State {
        var buckets: [String: StorageBucket] = [:]
        var repos: [String: Repository] = [:]
        var keys: [String: RepoAPIKey] = [:]
        var keyByAccessID: [String: String] = [:]
        var secretsByKeyID: [String: String] = [:]
    }

    private let state: Mutex<State>
    private let gate = SerialGate()
    private let shared = Mutex<SharedStoreHooks?>(nil)
    private let store: any CatalogStore
    private let secrets: SecretBox
    private let now: @Sendable () -> Date
    private let logger: Logger
    public let settings: CatalogSettings

    /// Loads the catalog from `store`.
    public static func open(
        store: any CatalogStore,
        secrets: SecretBox,
        settings: CatalogSettings = CatalogSettings(),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) async throws -> StorageCatalog {
        StorageCatalog(store: store, contents: try await store.load(), secrets: secrets, settings: settings, clock: clock, logger: logger)
    }

    /// A catalog over `store` whose contents were just loaded from it.
    public init(
        store: any CatalogStore,
        contents: CatalogContents,
        secrets: SecretBox,
        settings: CatalogSettings = CatalogSettings(),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) {
        self.store = store
        self.secrets = secrets
        self.settings = settings
        now = clock
        self.logger = logger
        state = Mutex(Self.state(of: contents, secrets: secrets, logger: logger))
    }

    private static func state(of contents: CatalogContents, secrets: SecretBox, logger: Logger) -> State {
        var loaded = State()
        for bucket in contents.buckets { loaded.buckets[bucket.id] = bucket }
        for repo in contents.repositories { loaded.repos[repo.id] = repo }
        for key in contents.keys {
            loaded.keys[key.id] = key
            if !key.isDeleted {
                loaded.keyByAccessID[key.accessKeyID] = key.id
                if let secret = try? secrets.open(key.sealedSecret, context: "repo-key:\(key.id)") {
                    loaded.secretsByKeyID[key.id] = String(decoding: secret, as: UTF8.self)
                } else {
                    logger.error("a repo API key secret cannot be opened with this master key", metadata: ["key": "\(key.id)"])
                }
            }
        }
        return loaded
    }

    /// The catalog of the embedded store in `storage` (the default, single-node setup).
    public convenience init(storage: CollectorStorage, secrets: SecretBox, settings: CatalogSettings = CatalogSettings(), syncWrites: Bool = false,
                            clock: @escaping @Sendable () -> Date = { Date() }, logger: Logger) throws {
        let store = RocksDBCatalogStore(storage: storage, sync: syncWrites)
        self.init(store: store, contents: try store.load(), secrets: secrets, settings: settings, clock: clock, logger: logger)
    }

    /// Replaces memory with what the store holds now (another collector changed it); runs
    /// between this process's own mutations.
    public func reload() async throws {
        try await gate.run { try await reloadInsideGate() }
    }

    private func reloadInsideGate() async throws {
        let fresh = Self.state(of: try await store.load(), secrets: secrets, logger: logger)
        state.withLock { $0 = fresh }
    }

    /// Runs a mutation through the gate; a conflict the store reports (another collector took
    /// the name first) reloads memory and is answered as `conflict` says.
    private func mutate<T: Sendable>(conflict: (any Error)? = nil, _ body: () async throws -> T) async throws -> T {
        await synchronize()
        return try await gate.run {
            do {
                return try await body()
            } catch let error as StoreError {
                guard case .conflict = error else { throw error }
                try? await reloadInsideGate()
                throw conflict ?? error
            }
        }
    }

    // MARK: Buckets

    /// The buckets the scope sees (optionally of one workspace), oldest first.
    public func buckets(_ scope: CatalogScope, workspaceId: String? = nil) -> [StorageBucket] {
        state.withLock { state in
            state.buckets.values
                .filter { !$0.isDeleted && scope.sees(organization: $0.organization, workspace: $0.workspaceId) }
                .filter { workspaceId == nil || $0.workspaceId == workspaceId }
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    /// Buckets (not deleted) per organization, for the export.
    public func bucketCounts() -> [String: Int] {
        state.withLock { state in
            var counts: [String: Int] = [:]
            for bucket in state.buckets.values where !bucket.isDeleted { counts[bucket.organization, default: 0] += 1 }
            return counts
        }
    }

    /// Buckets not used by any MIRROR repository.
    public func availableBuckets(_ scope: CatalogScope, workspaceId: String? = nil) -> [StorageBucket] {
        let all = buckets(scope, workspaceId: workspaceId)
        let mirrored = state.withLock { state in
            Set(state.repos.values.filter { !$0.isDeleted && $0.mode == .mirror }.flatMap { $0.buckets.map(\.bucketId) })
        }
        return all.filter { !mirrored.contains($0.id) }
    }

    /// One bucket the scope sees; `.notFound` otherwise.
    public func bucket(_ scope: CatalogScope, id: String) throws -> StorageBucket {
        try state.withLock { state in try visibleBucket(state, scope, id) }
    }

    private func visibleBucket(_ state: State, _ scope: CatalogScope, _ id: String) throws -> StorageBucket {
        guard let bucket = state.buckets[id], !bucket.isDeleted, scope.sees(organization: bucket.organization, workspace: bucket.workspaceId) else {
            throw CatalogError.notFound("Bucket not found")
        }
        return bucket
    }

    /// Whether `id` names a bucket the scope sees, another organization's (or another
    /// workspace's) bucket, or no bucket of the catalog at all.
    public func visibility(ofBucket id: String, _ scope: CatalogScope) -> CatalogVisibility {
        state.withLock { state in
            guard let bucket = state.buckets[id], !bucket.isDeleted else { return .unknown }
            return scope.sees(organization: bucket.organization, workspace: bucket.workspaceId) ? .visible : .hidden
        }
    }

    /// Like ``visibility(ofBucket:_:)`` for a repository.
    public func visibility(ofRepository id: String, _ scope: CatalogScope) -> CatalogVisibility {
        state.withLock { state in
            guard let repo = state.repos[id], !repo.isDeleted else { return .unknown }
            return scope.sees(organization: repo.organization, workspace: repo.workspaceId) ? .visible : .hidden
        }
    }

    /// The repositories (not deleted) that use a bucket.
    public func repositories(usingBucket id: String) -> [Repository] {
        state.withLock { state in state.repos.values.filter { !$0.isDeleted && $0.buckets.contains { $0.bucketId == id } } }
    }

    /// Creates a bucket. `draft` must carry name, bucket, storageType and workspaceId.
    public func createBucket(_ scope: CatalogScope, _ draft: BucketDraft, validation: BucketValidationResult?) async throws -> StorageBucket {
        guard let name = draft.name, let providerBucket = draft.bucket, let type = draft.storageType, let workspace = draft.workspaceId else {
            throw CatalogError.invalid("name, bucket, storageType and workspaceId are required")
        }
        guard scope.workspaces.isEmpty || scope.workspaces.contains(workspace) else {
            throw CatalogError.forbidden("Access denied: you have no access to workspace \(workspace)")
        }
        let id = UUID().uuidString.lowercased()
        var bucket = StorageBucket(
            id: id, organization: scope.organization, workspaceId: workspace, name: name, bucket: providerBucket,
            storageType: type, key: draft.key, sealedSecret: nil, endpoint: draft.endpoint, region: draft.region,
            projectId: draft.projectId, walletAddress: draft.walletAddress, status: nil, lastStatusAt: nil,
            latencyMs: nil, createdAt: now(), deletedAt: nil)
        if let secret = draft.secret { bucket.sealedSecret = try secrets.seal(Array(secret.utf8), context: "bucket:\(id)") }
        apply(validation, to: &bucket)
        let created = bucket
        return try await mutate(conflict: CatalogError.invalid(Self.bucketNameTaken(name))) {
            try state.withLock { state in
                let mine = state.buckets.values.filter { $0.organization == scope.organization && !$0.isDeleted }
                guard mine.count < settings.maxBucketsPerOrganization else {
                    throw CatalogError(.quotaExceeded, "Bucket quota exceeded: an organization may have at most \(settings.maxBucketsPerOrganization) buckets")
                }
                guard !mine.contains(where: { $0.name == name }) else { throw CatalogError.invalid(Self.bucketNameTaken(name)) }
            }
            try await store.save(created)
            state.withLock { $0.buckets[id] = created }
            return created
        }
    }

    static func bucketNameTaken(_ name: String) -> String {
        "A bucket named \(name) already exists in this organization"
    }

    /// Overwrites the fields present in `draft`; a new secret is sealed, an absent one kept.
    public func updateBucket(_ scope: CatalogScope, id: String, _ draft: BucketDraft, validation: BucketValidationResult?) async throws -> StorageBucket {
        if let workspace = draft.workspaceId, !(scope.workspaces.isEmpty || scope.workspaces.contains(workspace)) {
            throw CatalogError.forbidden("Access denied: you have no access to workspace \(workspace)")
        }
        let sealed = try draft.secret.map { try secrets.seal(Array($0.utf8), context: "bucket:\(id)") }
        return try await mutate(conflict: CatalogError.invalid(Self.bucketNameTaken(draft.name ?? ""))) {
            var bucket = try state.withLock { state in
                var bucket = try visibleBucket(state, scope, id)
                if let name = draft.name, name != bucket.name {
                    guard !state.buckets.values.contains(where: { $0.organization == scope.organization && !$0.isDeleted && $0.name == name }) else {
                        throw CatalogError.invalid(Self.bucketNameTaken(name))
                    }
                    bucket.name = name
                }
                return bucket
            }
            if let value = draft.bucket { bucket.bucket = value }
            if let value = draft.storageType { bucket.storageType = value }
            if let value = draft.key { bucket.key = value }
            if let sealed { bucket.sealedSecret = sealed }
            if let value = draft.endpoint { bucket.endpoint = value }
            if let value = draft.region { bucket.region = value }
            if let value = draft.projectId { bucket.projectId = value }
            if let value = draft.workspaceId { bucket.workspaceId = value }
            if let value = draft.walletAddress { bucket.walletAddress = value }
            apply(validation, to: &bucket)
            try await store.save(bucket)
            let saved = bucket
            state.withLock { $0.buckets[id] = saved }
            return saved
        }
    }

    /// Records the outcome of a validation run.
    public func recordValidation(bucketID: String, _ result: BucketValidationResult) async throws {
        try await mutate {
            guard var bucket = state.withLock({ $0.buckets[bucketID] }), !bucket.isDeleted else { return }
            apply(result, to: &bucket)
            try await store.save(bucket)
            let saved = bucket
            state.withLock { $0.buckets[bucketID] = saved }
        }
    }

    private func apply(_ result: BucketValidationResult?, to bucket: inout StorageBucket) {
        guard let result else { return }
        bucket.status = result.status
        bucket.latencyMs = result.latencyMs
        bucket.lastStatusAt = now()
    }

    /// Soft-deletes a bucket. `.forbidden` while a repository uses it.
    public func deleteBucket(_ scope: CatalogScope, id: String) async throws {
        try await mutate {
            var bucket = try state.withLock { state in
                let bucket = try visibleBucket(state, scope, id)
                if let user = state.repos.values.first(where: { !$0.isDeleted && $0.buckets.contains { $0.bucketId == id } }) {
                    throw CatalogError.forbidden("Bucket is in use by repository \(user.name); remove it from the repository first")
                }
                return bucket
            }
            bucket.deletedAt = now()
            bucket.sealedSecret = nil
            try await store.save(bucket)
            let saved = bucket
            state.withLock { $0.buckets[id] = saved }
        }
    }

    /// The plaintext provider secret of a bucket, for validation.
    public func providerSecret(of bucket: StorageBucket) -> String? {
        guard let sealed = bucket.sealedSecret, let bytes = try? secrets.open(sealed, context: "bucket:\(bucket.id)") else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Repositories

    /// The repositories the scope sees, optionally one workspace or one id.
    public func repositories(_ scope: CatalogScope, workspaceId: String? = nil, repoId: String? = nil) -> [Repository] {
        state.withLock { state in
            state.repos.values
                .filter { !$0.isDeleted && scope.sees(organization: $0.organization, workspace: $0.workspaceId) }
                .filter { workspaceId == nil || $0.workspaceId == workspaceId }
                .filter { repoId == nil || $0.id == repoId }
                .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    /// One repository the scope sees; `.notFound` otherwise.
    public func repository(_ scope: CatalogScope, id: String) throws -> Repository {
        try state.withLock { state in try visibleRepo(state, scope, id) }
    }

    private func visibleRepo(_ state: State, _ scope: CatalogScope, _ id: String) throws -> Repository {
        guard let repo = state.repos[id], !repo.isDeleted, scope.sees(organization: repo.organization, workspace: repo.workspaceId) else {
            throw CatalogError.notFound("Repository not found")
        }
        return repo
    }

    /// Creates a repository after checking the NORMAL/MIRROR rules.
    public func createRepository(_ scope: CatalogScope, _ draft: RepositoryDraft) async throws -> Repository {
        guard scope.workspaces.isEmpty || scope.workspaces.contains(draft.workspaceId) else {
            throw CatalogError.forbidden("Access denied: you have no access to workspace \(draft.workspaceId)")
        }
        return try await mutate(conflict: Self.repositoryNameTaken(draft.name)) {
            try state.withLock { state in
                let mine = state.repos.values.filter { $0.organization == scope.organization && !$0.isDeleted }
                guard mine.count < settings.maxReposPerOrganization else {
                    throw RepoRuleError(.quotaExceeded, "Repository quota exceeded: at most \(settings.maxReposPerOrganization) repositories")
                }
                guard !mine.contains(where: { $0.name == draft.name }) else { throw Self.repositoryNameTaken(draft.name) }
                try checkRules(state, scope, draft, excluding: nil, previous: nil)
            }
            let repo = Repository(
                id: UUID().uuidString.lowercased(), organization: scope.organization, workspaceId: draft.workspaceId,
                name: draft.name, storageType: draft.storageType, mode: draft.mode, buckets: draft.buckets,
                walletAddress: draft.walletAddress, createdAt: now(), deletedAt: nil)
            try await store.save(repo)
            state.withLock { $0.repos[repo.id] = repo }
            return repo
        }
    }

    static func repositoryNameTaken(_ name: String) -> RepoRuleError {
        RepoRuleError(.nameAlreadyUsed, "A repository named \(name) already exists")
    }

    /// Replaces a repository's definition; NORMAL folders may not be removed or re-pointed.
    public func updateRepository(_ scope: CatalogScope, id: String, _ draft: RepositoryDraft) async throws -> Repository {
        try await mutate(conflict: Self.repositoryNameTaken(draft.name)) {
            var repo = try state.withLock { state in
                let repo = try visibleRepo(state, scope, id)
                if draft.name != repo.name,
                   state.repos.values.contains(where: { $0.organization == scope.organization && !$0.isDeleted && $0.name == draft.name }) {
                    throw Self.repositoryNameTaken(draft.name)
                }
                guard scope.workspaces.isEmpty || scope.workspaces.contains(draft.workspaceId) else {
                    throw CatalogError.forbidden("Access denied: you have no access to workspace \(draft.workspaceId)")
                }
                try checkRules(state, scope, draft, excluding: id, previous: repo)
                return repo
            }
            repo.name = draft.name
            repo.storageType = draft.storageType
            repo.mode = draft.mode
            repo.workspaceId = draft.workspaceId
            repo.buckets = draft.buckets
            repo.walletAddress = draft.walletAddress ?? repo.walletAddress
            try await store.save(repo)
            let saved = repo
            state.withLock { $0.repos[id] = saved }
            return saved
        }
    }

    private func checkRules(_ state: State, _ scope: CatalogScope, _ draft: RepositoryDraft, excluding: String?, previous: Repository?) throws {
        guard !draft.buckets.isEmpty else { throw CatalogError.invalid("repoBuckets must name at least one bucket") }
        for link in draft.buckets {
            guard let bucket = state.buckets[link.bucketId], !bucket.isDeleted,
                  scope.sees(organization: bucket.organization, workspace: bucket.workspaceId) else {
                throw RepoRuleError(.notFound, "Bucket \(link.bucketId) not found")
            }
        }
        let others = state.repos.values.filter { !$0.isDeleted && $0.id != excluding && $0.organization == scope.organization }
        let ids = draft.buckets.map(\.bucketId)
        switch draft.mode {
        case .mirror:
            let masters = draft.buckets.filter(\.master).count
            if masters == 0 { throw RepoRuleError(.mirrorMasterUnitMissing, "A MIRROR repository needs one master bucket") }
            if masters > 1 { throw RepoRuleError(.mirrorMasterUnitCountInvalid, "A MIRROR repository has exactly one master bucket, not \(masters)") }
            if let other = others.first(where: { repo in repo.buckets.contains { ids.contains($0.bucketId) } }) {
                throw RepoRuleError(.mirrorUnitAlreadyInOtherRepo, "A bucket of this MIRROR repository is already used by repository \(other.name)")
            }
        case .normal:
            let folders = draft.buckets.map(\.folder)
            if Set(folders).count != folders.count {
                throw RepoRuleError(.normalUnitFolderAlreadyUsed, "Each folder of a NORMAL repository maps to one bucket")
            }
            if let other = others.first(where: { $0.mode == .mirror && $0.buckets.contains { ids.contains($0.bucketId) } }) {
                throw RepoRuleError(.mirrorUnitAlreadyInOtherRepo, "A bucket is already part of MIRROR repository \(other.name)")
            }
            if let previous, previous.mode == .normal {
                for old in previous.buckets {
                    guard let now = draft.buckets.first(where: { $0.folder == old.folder }) else {
                        throw RepoRuleError(.normalUnitFolderCannotDelete, "Folder \(old.folder) cannot be removed from a NORMAL repository")
                    }
                    if now.bucketId != old.bucketId {
                        throw RepoRuleError(.normalUnitCannotEditFolder, "Folder \(old.folder) cannot be moved to another bucket")
                    }
                }
            }
        }
    }

    /// Checks a repository's mode and buckets against the NORMAL/MIRROR rules without saving
    /// anything (`POST /repo/validate`); with `repoId`, as an update of that repository.
    /// - Throws: ``RepoRuleError`` naming the broken rule, `.notFound` for an unknown `repoId`.
    public func validateRepository(_ scope: CatalogScope, mode: RepoMode, buckets: [RepoBucketLink], repoId: String?) throws {
        try state.withLock { state in
            let previous = try repoId.map { try visibleRepo(state, scope, $0) }
            let draft = RepositoryDraft(name: previous?.name ?? "", storageType: previous?.storageType ?? .s3, mode: mode,
                                        workspaceId: previous?.workspaceId ?? "", buckets: buckets, walletAddress: nil)
            try checkRules(state, scope, draft, excluding: repoId, previous: previous)
        }
    }

    /// Soft-deletes a repository; its API keys stop working at once.
    public func deleteRepository(_ scope: CatalogScope, id: String) async throws {
        try await mutate {
            let deletedAt = now()
            let (repo, revoked) = try state.withLock { state in
                var repo = try visibleRepo(state, scope, id)
                repo.deletedAt = deletedAt
                var revoked: [RepoAPIKey] = []
                for var key in state.keys.values where key.repoId == id && !key.isDeleted {
                    key.deletedAt = deletedAt
                    revoked.append(key)
                }
                return (repo, revoked)
            }
            try await store.save(repo, keys: revoked)
            state.withLock { state in
                state.repos[id] = repo
                for key in revoked {
                    state.keys[key.id] = key
                    state.keyByAccessID[key.accessKeyID] = nil
                    state.secretsByKeyID[key.id] = nil
                }
            }
        }
    }

    // MARK: Repo API keys

    /// Creates a key for a repository; the secret is returned here and never again.
    public func createAPIKey(_ scope: CatalogScope, repoId: String, name: String, accessType: AccessType) async throws -> (key: RepoAPIKey, secret: String) {
        let secret = Self.makeSecret()
        return try await mutate {
            let (repo, accessKeyID) = try state.withLock { state in
                let repo = try visibleRepo(state, scope, repoId)
                var accessKeyID = Self.makeAccessKeyID()
                while state.keyByAccessID[accessKeyID] != nil { accessKeyID = Self.makeAccessKeyID() }
                return (repo, accessKeyID)
            }
            let id = UUID().uuidString.lowercased()
            let key = RepoAPIKey(
                id: id, repoId: repo.id, organization: repo.organization, name: name, accessType: accessType,
                accessKeyID: accessKeyID, sealedSecret: try secrets.seal(Array(secret.utf8), context: "repo-key:\(id)"),
                createdAt: now(), deletedAt: nil)
            try await store.save(key)
            state.withLock { state in
                state.keys[id] = key
                state.keyByAccessID[accessKeyID] = id
                state.secretsByKeyID[id] = secret
            }
            return (key, secret)
        }
    }

    /// The repository's keys that are not deleted, oldest first (never their secrets).
    public func apiKeys(_ scope: CatalogScope, repoId: String) throws -> [RepoAPIKey] {
        try state.withLock { state in
            _ = try visibleRepo(state, scope, repoId)
            return state.keys.values.filter { $0.repoId == repoId && !$0.isDeleted }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        }
    }

    /// Renames a key and changes its access; effective for the next authorization.
    public func updateAPIKey(_ scope: CatalogScope, repoId: String, keyId: String, name: String, accessType: AccessType) async throws {
        try await mutate {
            var key = try liveKey(scope, repoId: repoId, keyId: keyId)
            key.name = name
            key.accessType = accessType
            try await store.save(key)
            let saved = key
            state.withLock { $0.keys[keyId] = saved }
        }
    }

    private func liveKey(_ scope: CatalogScope, repoId: String, keyId: String) throws -> RepoAPIKey {
        try state.withLock { state in
            _ = try visibleRepo(state, scope, repoId)
            guard let key = state.keys[keyId], key.repoId == repoId, !key.isDeleted else { throw CatalogError.notFound("API key not found") }
            return key
        }
    }

    /// Revokes a key at once (soft delete).
    public func deleteAPIKey(_ scope: CatalogScope, repoId: String, keyId: String) async throws {
        try await mutate {
            var key = try liveKey(scope, repoId: repoId, keyId: keyId)
            key.deletedAt = now()
            try await store.save(key)
            let saved = key
            state.withLock { state in
                state.keys[keyId] = saved
                state.keyByAccessID[saved.accessKeyID] = nil
                state.secretsByKeyID[keyId] = nil
            }
        }
    }

    /// The live key with this access key id, with its secret, repository and buckets.
    public func resolve(accessKeyID: String) -> ResolvedAPIKey? {
        state.withLock { state in
            guard let id = state.keyByAccessID[accessKeyID], let key = state.keys[id], !key.isDeleted,
                  let secret = state.secretsByKeyID[id], let repo = state.repos[key.repoId], !repo.isDeleted else { return nil }
            let buckets = repo.buckets.compactMap { state.buckets[$0.bucketId] }.filter { !$0.isDeleted }
            return ResolvedAPIKey(key: key, secret: secret, repository: repo, buckets: buckets)
        }
    }

    /// Like ``resolve(accessKeyID:)``; when the key is unknown and a shared store backs the
    /// catalog, the refresh given to ``refreshOnMiss(_:)`` runs first (the key may have been
    /// created through another collector a moment ago).
    public func resolveRefreshing(accessKeyID: String) async -> ResolvedAPIKey? {
        if let resolved = resolve(accessKeyID: accessKeyID) { return resolved }
        guard let hooks = shared.withLock({ $0 }) else { return nil }
        await hooks.afterMiss()
        return resolve(accessKeyID: accessKeyID)
    }

    /// Cluster mode: the catalog's store is shared, so memory may lag behind it. `barrier`
    /// brings memory up to what the store held when it was called (before every mutation and
    /// ``synchronize()``); `afterMiss` runs when an access key id is unknown (it must limit
    /// itself, since anyone can send unknown keys).
    public func useSharedStore(_ hooks: SharedStoreHooks) {
        shared.withLock { $0 = hooks }
    }

    /// Brings memory up to the shared store's state now (cluster mode; nothing otherwise), so a
    /// read sees every change committed before it, through whichever collector.
    public func synchronize() async {
        await shared.withLock({ $0 })?.barrier()
    }

    /// `FB` + 18 characters of `[A-Z2-7]`: 20 characters like an AWS access key id.
    static func makeAccessKeyID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        let random = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return "FB" + String(random.prefix(18).map { alphabet[Int($0) % alphabet.count] })
    }

    /// 40 characters of `[A-Za-z0-9+/]` (240 bits), like an AWS secret access key.
    static func makeSecret() -> String {
        let random = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) } + SymmetricKey(size: .bits128).withUnsafeBytes { Data($0) }
        return String(random.base64EncodedString().prefix(40))
    }
}

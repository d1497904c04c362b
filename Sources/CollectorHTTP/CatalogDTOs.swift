import Catalog
import FlashbackWire
import Foundation
import Registry

/// `StorageBucket` as the API shows it (flashback-api.md §2.1). Never carries the secret.
struct BucketDTO: Encodable, Sendable {
    struct RepoBasic: Encodable, Sendable {
        var id: String
        var name: String
        var storageType: String
        var createdAt: String
    }

    var id: String
    var name: String
    var bucket: String
    var storageType: String
    var key: String?
    var endpoint: String?
    var region: String?
    var status: String?
    var lastStatusAt: String?
    var latency_ms: Int?
    var projectId: String?
    var createdAt: String
    var workspaceId: String
    var walletAddress: String?
    var repos: [RepoBasic]

    init(_ bucket: StorageBucket, repos: [Repository]) {
        id = bucket.id
        name = bucket.name
        self.bucket = bucket.bucket
        storageType = bucket.storageType.rawValue
        key = bucket.key
        endpoint = bucket.endpoint
        region = bucket.region
        status = bucket.status
        lastStatusAt = bucket.lastStatusAt?.flashbackTimestamp
        latency_ms = bucket.latencyMs
        projectId = bucket.projectId
        createdAt = bucket.createdAt.flashbackTimestamp
        workspaceId = bucket.workspaceId
        walletAddress = bucket.walletAddress
        self.repos = repos.map { RepoBasic(id: $0.id, name: $0.name, storageType: $0.storageType.rawValue, createdAt: $0.createdAt.flashbackTimestamp) }
    }
}

struct ValidationResponse: Encodable, Sendable {
    var success: Bool
    var status: String
    var latency_ms: Int
    var message: String
}

/// `{success, buckets}`; on the legacy `/unit` routes also `units` (Appendix B).
struct BucketListResponse: Encodable, Sendable {
    var success = true
    var buckets: [BucketDTO]
    var units: [BucketDTO]?

    init(buckets: [BucketDTO], legacy: Bool = false) {
        self.buckets = buckets
        self.units = legacy ? buckets : nil
    }
}

/// `{success, bucketId, status, latency_ms}`; on the legacy `/unit` routes also `unitId`.
struct BucketWriteResponse: Encodable, Sendable {
    var success = true
    var bucketId: String
    var unitId: String?
    var status: String?
    var latency_ms: Int?
}

/// `POST /repo/validate`: the rules hold (a broken rule answers 400 with `error_code`).
struct RepoValidationResponse: Encodable, Sendable {
    var success = true
}

struct RepoWriteResponse: Encodable, Sendable {
    var success = true
    var repoId: String
}

/// The body of a refused repository write: the envelope plus the contract's error fields.
struct RepoErrorResponse: Encodable, Sendable {
    var success = false
    var message: String
    var error_code: String
    var error_message: String
}

/// `ApiKey` (§2.3); the secret never appears.
struct APIKeyDTO: Encodable, Sendable {
    var id: String
    var name: String
    var accessType: String
    var key: String
    var repoId: String
    var createdAt: String

    init(_ key: RepoAPIKey) {
        id = key.id
        name = key.name
        accessType = key.accessType.rawValue
        self.key = key.accessKeyID
        repoId = key.repoId
        createdAt = key.createdAt.flashbackTimestamp
    }
}

struct RepoDTO: Encodable, Sendable {
    struct Link: Encodable, Sendable {
        var folder: String
        var master: Bool
        var bucketId: String
        var bucket: BucketDTO?
    }

    var id: String
    var name: String
    var storageType: String
    var mode: String
    var workspaceId: String
    var buckets: [Link]
    var apiKeys: [APIKeyDTO]
    var createdAt: String
    var walletAddress: String?
}

struct RepoListResponse: Encodable, Sendable {
    var success = true
    var repos: [RepoDTO]
}

struct APIKeyCreatedResponse: Encodable, Sendable {
    var success = true
    var id: String
    var key: String
    var secret: String
}

struct APIKeyListResponse: Encodable, Sendable {
    var success = true
    var keys: [APIKeyDTO]
}

struct AuthorizeResponse: Encodable, Sendable {
    var success: Bool
    var allow: Bool
    var message: String
    var operation: String?
    var repoId: String?
    var apiKeyId: String?
    var accessType: String?
}

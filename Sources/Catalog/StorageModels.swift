import Foundation

/// The storage API a bucket speaks (`StorageType` of the contract). `AZURE` is accepted for
/// `BLOB` and `BLOB` is emitted (DESIGN.md §4.9).
public enum StorageType: String, Codable, Sendable, CaseIterable {
    case s3 = "S3"
    case gcs = "GCS"
    case blob = "BLOB"

    /// Parses `S3`, `GCS`, `BLOB` or `AZURE` (case-insensitive).
    public init?(parsing text: String) {
        switch text.uppercased() {
        case "S3": self = .s3
        case "GCS": self = .gcs
        case "BLOB", "AZURE": self = .blob
        default: return nil
        }
    }
}

/// A provider bucket (or Azure container) registered by an organization.
public struct StorageBucket: Codable, Sendable, Equatable {
    public var id: String
    public var organization: String
    public var workspaceId: String
    /// Display name, unique within the organization.
    public var name: String
    /// The provider-side bucket or container name.
    public var bucket: String
    public var storageType: StorageType
    /// Provider access key id (S3/GCS HMAC access id, Azure account name). Not a secret.
    public var key: String?
    /// Provider secret sealed under the master key (context `bucket:<id>`); never returned.
    public var sealedSecret: [UInt8]?
    /// Endpoint of an S3/GCS-compatible service or an Azure-compatible blob endpoint.
    public var endpoint: String?
    public var region: String?
    public var projectId: String?
    public var walletAddress: String?
    /// `ONLINE` or `OFFLINE` from the latest validation.
    public var status: String?
    public var lastStatusAt: Date?
    public var latencyMs: Int?
    public var createdAt: Date
    public var deletedAt: Date?

    /// Memberwise, for stores and tests.
    public init(id: String, organization: String, workspaceId: String, name: String, bucket: String, storageType: StorageType, key: String? = nil, sealedSecret: [UInt8]? = nil, endpoint: String? = nil, region: String? = nil, projectId: String? = nil, walletAddress: String? = nil, status: String? = nil, lastStatusAt: Date? = nil, latencyMs: Int? = nil, createdAt: Date, deletedAt: Date? = nil) {
        self.id = id
        self.organization = organization
        self.workspaceId = workspaceId
        self.name = name
        self.bucket = bucket
        self.storageType = storageType
        self.key = key
        self.sealedSecret = sealedSecret
        self.endpoint = endpoint
        self.region = region
        self.projectId = projectId
        self.walletAddress = walletAddress
        self.status = status
        self.lastStatusAt = lastStatusAt
        self.latencyMs = latencyMs
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }

    public var isDeleted: Bool { deletedAt != nil }
}

/// How a repository uses its buckets.
public enum RepoMode: String, Codable, Sendable {
    /// Folders map to distinct buckets.
    case normal = "NORMAL"
    /// Every bucket holds the same data; exactly one is the master.
    case mirror = "MIRROR"
}

/// One bucket of a repository.
public struct RepoBucketLink: Codable, Sendable, Equatable {
    public var folder: String
    public var master: Bool
    public var bucketId: String

    /// A `RepoBucketLink` from its parts.
    public init(folder: String, master: Bool, bucketId: String) {
        self.folder = folder
        self.master = master
        self.bucketId = bucketId
    }
}

/// A repository: what apps address through bridge nodes, backed by one or more buckets.
public struct Repository: Codable, Sendable, Equatable {
    public var id: String
    public var organization: String
    public var workspaceId: String
    /// Unique within the organization; also the bucket name apps use against bridge nodes.
    public var name: String
    public var storageType: StorageType
    public var mode: RepoMode
    public var buckets: [RepoBucketLink]
    public var walletAddress: String?
    public var createdAt: Date
    public var deletedAt: Date?

    /// Memberwise, for stores and tests.
    public init(id: String, organization: String, workspaceId: String, name: String, storageType: StorageType, mode: RepoMode, buckets: [RepoBucketLink], walletAddress: String? = nil, createdAt: Date, deletedAt: Date? = nil) {
        self.id = id
        self.organization = organization
        self.workspaceId = workspaceId
        self.name = name
        self.storageType = storageType
        self.mode = mode
        self.buckets = buckets
        self.walletAddress = walletAddress
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }

    public var isDeleted: Bool { deletedAt != nil }
}

/// What a repo storage API key may do.
public enum AccessType: String, Codable, Sendable, CaseIterable, Comparable {
    /// GET, HEAD and listings.
    case read = "READ"
    /// READ plus PUT, POST and DELETE of objects.
    case write = "WRITE"
    /// Everything, bucket configuration included.
    case admin = "ADMIN"

    private var rank: Int {
        switch self {
        case .read: return 0
        case .write: return 1
        case .admin: return 2
        }
    }

    public static func < (lhs: AccessType, rhs: AccessType) -> Bool { lhs.rank < rhs.rank }
}

/// A scoped storage credential of a repository (AWS-style access key id and 40-character secret).
public struct RepoAPIKey: Codable, Sendable, Equatable {
    public var id: String
    public var repoId: String
    public var organization: String
    public var name: String
    public var accessType: AccessType
    /// The access key id apps put in their SigV4 `Credential=`.
    public var accessKeyID: String
    /// The secret sealed under the master key (context `repo-key:<id>`); shown once at creation.
    public var sealedSecret: [UInt8]
    public var createdAt: Date
    public var deletedAt: Date?

    /// Memberwise, for stores and tests.
    public init(id: String, repoId: String, organization: String, name: String, accessType: AccessType, accessKeyID: String, sealedSecret: [UInt8], createdAt: Date, deletedAt: Date? = nil) {
        self.id = id
        self.repoId = repoId
        self.organization = organization
        self.name = name
        self.accessType = accessType
        self.accessKeyID = accessKeyID
        self.sealedSecret = sealedSecret
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }

    public var isDeleted: Bool { deletedAt != nil }
}

/// A repository rule violation, with the contract's `RepoErrorCodes` value.
public struct RepoRuleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The contract's `RepoErrorCodes` values.
    public enum Code: String, Sendable {
        case notFound = "NOT_FOUND"
        case nameAlreadyUsed = "NAME_ALREADY_USED"
        case mirrorMasterUnitCountInvalid = "MIRROR_MASTER_UNIT_COUNT_INVALID"
        case mirrorMasterUnitMissing = "MIRROR_MASTER_UNIT_MISSING"
        case mirrorUnitAlreadyInOtherRepo = "MIRROR_UNIT_ALREADY_IN_OTHER_REPO"
        case normalUnitFolderAlreadyUsed = "NORMAL_UNIT_FOLDER_ALREADY_USED"
        case normalUnitFolderCannotDelete = "NORMAL_UNIT_FOLDER_CANNOT_DELETE"
        case normalUnitCannotEditFolder = "NORMAL_UNIT_CANNOT_EDIT_FOLDER"
        case quotaExceeded = "QUOTA_EXCEEDED"
    }

    public let code: Code
    public let message: String

    /// A `RepoRuleError` from its parts.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

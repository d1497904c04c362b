import Foundation

// The bodies of the storage catalog's routes (flashback-api.md §2–§4) and the bounds the routes
// apply before anything is looked up. Pure: fuzzed by `flashback-fuzz bucket|repo|repo-key|authorize`.

/// Longest accepted value of each catalog text field, in characters.
public enum CatalogFieldLimits {
    public static let limits: [String: Int] = [
        "name": 128, "bucket": 255, "key": 256, "secret": 8192, "endpoint": 512, "region": 64,
        "workspaceId": 128, "walletAddress": 128, "projectId": 128, "folder": 256,
    ]

    /// Refuses a value longer than the limit of `field` (fields without a limit pass).
    public static func check(_ field: String, _ value: String?) throws(RequestError) {
        guard let value, let limit = limits[field] else { return }
        guard value.count <= limit else { throw RequestError("\(field) is longer than \(limit) characters") }
    }
}

/// `POST /bucket` and `PUT /bucket/{id}` bodies; every field optional here, required ones checked by the route.
public struct BucketRequest: Decodable, Sendable {
    public var name: String?
    public var bucket: String?
    public var storageType: String?
    public var key: String?
    public var secret: String?
    public var region: String?
    public var endpoint: String?
    public var workspaceId: String?
    public var walletAddress: String?
    public var projectId: String?
    public var apiKeyUuid: String?
}

/// `POST /bucket/{id}/validate` body (all optional; present values are tested instead of stored ones).
public struct ValidateRequest: Decodable, Sendable {
    public var bucket: String?
    public var key: String?
    public var secret: String?
    public var endpoint: String?
    public var region: String?

    /// A `ValidateRequest` from its parts.
    public init(bucket: String? = nil, key: String? = nil, secret: String? = nil, endpoint: String? = nil, region: String? = nil) {
        self.bucket = bucket
        self.key = key
        self.secret = secret
        self.endpoint = endpoint
        self.region = region
    }
}

/// An element of `repoBuckets` (or the legacy `repoUnits`).
public struct RepoBucketRequest: Decodable, Sendable {
    public var folder: String?
    public var master: Bool?
    public var bucketId: String?
    public var unitId: String?
    public var bucket: BucketReference?
    public var unit: BucketReference?

    /// `bucket` may be an id/name string or a bucket object with an `id`.
    public enum BucketReference: Decodable, Sendable {
        case text(String)
        case object(id: String?)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else {
                struct Object: Decodable { var id: String? }
                self = .object(id: try container.decode(Object.self).id)
            }
        }

        public var reference: String? {
            switch self {
            case .text(let text): return text
            case .object(let id): return id
            }
        }
    }
}

/// The body of `POST /repo` and `PUT /repo/{id}` (flashback-api.md §9).
public struct RepoRequest: Decodable, Sendable {
    public var name: String
    public var storageType: String
    public var mode: String?
    public var workspaceId: String
    public var repoBuckets: [RepoBucketRequest]?
    public var repoUnits: [RepoBucketRequest]?
    public var walletAddress: String?
}

/// The body of `POST /repo/validate` and `POST /repo/{id}/validate` (§9): a repository's mode and
/// buckets checked against the NORMAL/MIRROR rules without saving anything.
public struct RepoValidateRequest: Decodable, Sendable {
    public var repoId: String?
    public var mode: String?
    public var repoBuckets: [RepoBucketRequest]?
    public var repoUnits: [RepoBucketRequest]?
}

/// The body of `POST /repo/{id}/apikey` and its update.
public struct APIKeyRequest: Decodable, Sendable {
    public var name: String
    public var accessType: String
    public var repoId: String?
}

/// `POST /apikey/authorize` body: the parts of an S3 request an app signed, as a node saw them.
public struct AuthorizeRequest: Decodable, Sendable {
    public var method: String
    public var path: String
    public var query: String?
    /// Header names and values as received; an object, or an array of `[name, value]` pairs.
    public var headers: HeaderList
    /// The bucket the node routed the request to, when it knows it.
    public var bucket: String?

    /// Bounds the request before its signature is computed.
    public func check() throws(RequestError) {
        guard path.hasPrefix("/"), path.utf8.count <= 4096, (query ?? "").utf8.count <= 8192, headers.pairs.count <= 200,
              method.utf8.count <= 16 else {
            throw RequestError("path must start with '/', and method, path, query and headers must be of reasonable size")
        }
    }

    /// The request as SigV4 covers it.
    public var signedRequest: SigV4.Request {
        SigV4.Request(method: method, path: path, query: query ?? "", headers: headers.pairs)
    }

    /// Request headers as a client sends them: an object, or a list of name/value pairs.
    public struct HeaderList: Decodable, Sendable {
        public var pairs: [(name: String, value: String)]

        public init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let object = try? container.decode([String: String].self) {
                pairs = object.map { (name: $0.key, value: $0.value) }
            } else {
                pairs = try container.decode([[String]].self).compactMap { $0.count == 2 ? (name: $0[0], value: $0[1]) : nil }
            }
        }
    }
}


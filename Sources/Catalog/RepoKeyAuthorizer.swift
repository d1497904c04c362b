import FlashbackWire
import Foundation

/// Decides whether an S3 request signed with a repo API key may run (DESIGN.md §4.12).
///
/// READ covers GET and HEAD (objects, listings, configuration reads); WRITE adds PUT, POST and
/// DELETE of objects (including multipart uploads and multi-object delete); ADMIN covers
/// everything, including changes to the bucket itself.
public struct RepoKeyAuthorizer: Sendable {
    /// The access a request needs.
    public enum Operation: String, Sendable {
        case read = "READ"
        case write = "WRITE"
        case admin = "ADMIN"

        var required: AccessType {
            switch self {
            case .read: return .read
            case .write: return .write
            case .admin: return .admin
            }
        }
    }

    /// A decision with its reason.
    public struct Decision: Sendable, Equatable {
        public var allow: Bool
        public var message: String
        public var operation: Operation?
        public var repoId: String?
        public var apiKeyId: String?
        public var accessType: AccessType?
    }

    private let catalog: StorageCatalog
    /// Accepted distance between the request's `x-amz-date` and now.
    public var maxClockSkew: TimeInterval = 900

    /// A `RepoKeyAuthorizer` from its parts.
    public init(catalog: StorageCatalog) {
        self.catalog = catalog
    }

    /// Verifies the signature with the stored secret and checks the key's access.
    /// - Parameters:
    ///   - nodeOrganization: the asking node's organization; `nil` for a public node (any bucket).
    ///   - bucketHint: the bucket the node routed the request to, if it knows it.
    public func authorize(_ request: SigV4.Request, nodeOrganization: String?, isPublicNode: Bool, bucketHint: String?, now: Date) async -> Decision {
        func deny(_ message: String, _ operation: Operation? = nil, _ resolved: ResolvedAPIKey? = nil) -> Decision {
            Decision(allow: false, message: message, operation: operation, repoId: resolved?.repository.id,
                     apiKeyId: resolved?.key.id, accessType: resolved?.key.accessType)
        }
        // The Authorization header, or else a presigned URL's query signature.
        let accessKeyID: String
        let presigned: SigV4.PresignedQuery?
        let header: SigV4.Authorization?
        if let value = request.values(of: "authorization").first {
            guard let parsed = SigV4.Authorization(header: value) else {
                return deny("the Authorization header is not AWS Signature Version 4")
            }
            (header, presigned, accessKeyID) = (parsed, nil, parsed.accessKeyID)
        } else if let query = SigV4.PresignedQuery(query: request.query) {
            (header, presigned, accessKeyID) = (nil, query, query.authorization.accessKeyID)
        } else {
            return deny("the request carries no Authorization header and no presigned query signature")
        }
        guard let resolved = await catalog.resolveRefreshing(accessKeyID: accessKeyID) else {
            return deny("unknown or revoked access key")
        }
        if !isPublicNode, resolved.repository.organization != nodeOrganization {
            return deny("the key belongs to another organization's repository", nil, nil)
        }
        do {
            if let header {
                try SigV4.verify(request, authorization: header, secret: resolved.secret, now: now, maxSkew: maxClockSkew)
            } else if let presigned {
                try SigV4.verifyPresigned(request, presigned: presigned, secret: resolved.secret, now: now, maxSkew: maxClockSkew)
            }
        } catch .clockSkew {
            return deny("the request time is more than \(Int(maxClockSkew)) s away from the server's clock", nil, resolved)
        } catch .missingDate {
            return deny("the request has no valid x-amz-date", nil, resolved)
        } catch .scopeDateMismatch {
            return deny("the credential scope date does not match x-amz-date", nil, resolved)
        } catch .expired {
            return deny("the presigned URL has expired", nil, resolved)
        } catch {
            return deny("signature does not match", nil, resolved)
        }
        let host = request.values(of: "host").first ?? ""
        guard let target = Self.target(path: request.path, host: host, hint: bucketHint, resolved: resolved) else {
            return deny("the bucket of this request is not part of repository \(resolved.repository.name)", nil, resolved)
        }
        let operation = Self.operation(method: request.method, objectKey: target.objectKey, query: request.query)
        guard resolved.key.accessType >= operation.required else {
            return deny("a \(resolved.key.accessType.rawValue) key may not perform this \(operation.rawValue) operation", operation, resolved)
        }
        return Decision(allow: true, message: "allowed", operation: operation, repoId: resolved.repository.id,
                        apiKeyId: resolved.key.id, accessType: resolved.key.accessType)
    }

    /// The names a repository answers to: its own name, and id, name or provider name of its buckets.
    static func names(of resolved: ResolvedAPIKey) -> Set<String> {
        var names: Set<String> = [resolved.repository.name, resolved.repository.id]
        for bucket in resolved.buckets { names.formUnion([bucket.id, bucket.name, bucket.bucket]) }
        return names
    }

    /// Finds the bucket (path-style first segment, virtual-hosted first host label, or the hint)
    /// and the object key that follows it.
    static func target(path: String, host: String, hint: String?, resolved: ResolvedAPIKey) -> (bucket: String, objectKey: String)? {
        let names = names(of: resolved)
        let decoded = SigV4.percentDecode(path)
        let trimmed = decoded.hasPrefix("/") ? String(decoded.dropFirst()) : decoded
        let segments = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        let first = segments.first.map(String.init) ?? ""
        if let hint {
            guard names.contains(hint) else { return nil }
            if first == hint { return (hint, segments.count > 1 ? String(segments[1]) : "") }
            return (hint, trimmed)
        }
        if !first.isEmpty, names.contains(first) {
            return (first, segments.count > 1 ? String(segments[1]) : "")
        }
        let hostName = host.split(separator: ":").first.map(String.init) ?? host
        if let label = hostName.split(separator: ".").first.map(String.init), hostName.contains("."), names.contains(label) {
            return (label, trimmed)
        }
        return nil
    }

    /// The access an S3 operation needs.
    static func operation(method: String, objectKey: String, query: String) -> Operation {
        switch method.uppercased() {
        case "GET", "HEAD":
            return .read
        case "PUT", "DELETE":
            return objectKey.isEmpty ? .admin : .write
        case "POST":
            if !objectKey.isEmpty { return .write }
            // POST /bucket?delete is DeleteObjects, an object operation.
            let names = query.split(separator: "&").map { $0.split(separator: "=").first.map(String.init) ?? "" }
            return names.contains("delete") ? .write : .admin
        default:
            return .admin
        }
    }
}

import CollectorModel
import Foundation

/// A registered bridge node.
public struct BridgeNode: Codable, Sendable, Equatable {
    /// Server-assigned id (UUID, lower case).
    public var id: String
    /// The node's public IP; unique within its organization (or among public nodes).
    public var ip: String
    public var region: String
    /// Cloud provider as the node reported it (`AWS`, `GCP`, `S3`, …), if any.
    public var provider: String?
    /// Node software version.
    public var version: String
    /// The status text the node sent at registration (`running`, `active`, …).
    public var reportedStatus: String
    /// `ServiceFlag` bitmask: STORAGE 1, AILLM 2, CHAT 4.
    public var nodeServices: Int
    /// The node's base URL.
    public var url: String
    /// The owning organization, or `nil` for a Flashback-operated public node.
    public var organization: String?
    public var createdAt: Date
    /// When the collector last heard from the node (registration, status report, ingest).
    public var lastSeen: Date
    /// Set by an administrator's soft delete; a deleted node is hidden and its token revoked.
    public var deletedAt: Date?
    /// The organization key that verified the latest registration.
    public var keyID: String?
    /// Latency of the latest status report, in milliseconds.
    public var latencyMs: Double?
    /// The node credential sealed under the master key (`SecretBox`, context `node-token:<id>`);
    /// `nil` when revoked.
    public var sealedToken: [UInt8]?
    /// SHA-256 of the node credential, for bearer checks and for finding the node by its
    /// credential in a shared store; `nil` when revoked (and in records written before it).
    public var tokenDigest: [UInt8]?

    /// Memberwise, for stores and tests.
    public init(id: String, ip: String, region: String, provider: String? = nil, version: String, reportedStatus: String, nodeServices: Int, url: String, organization: String? = nil, createdAt: Date, lastSeen: Date, deletedAt: Date? = nil, keyID: String? = nil, latencyMs: Double? = nil, sealedToken: [UInt8]? = nil, tokenDigest: [UInt8]? = nil) {
        self.id = id
        self.ip = ip
        self.region = region
        self.provider = provider
        self.version = version
        self.reportedStatus = reportedStatus
        self.nodeServices = nodeServices
        self.url = url
        self.organization = organization
        self.createdAt = createdAt
        self.lastSeen = lastSeen
        self.deletedAt = deletedAt
        self.keyID = keyID
        self.latencyMs = latencyMs
        self.sealedToken = sealedToken
        self.tokenDigest = tokenDigest
    }

    public var isDeleted: Bool { deletedAt != nil }
}

/// Liveness of a node derived from when it was last heard from (DESIGN.md §4.5).
public enum NodeLiveness: String, Sendable, Codable {
    case online = "ONLINE"
    case offline = "OFFLINE"
    case disconnected = "DISCONNECTED"
}

/// When a silent node turns OFFLINE and then DISCONNECTED.
public struct LivenessPolicy: Sendable, Equatable {
    /// Silence after which a node is OFFLINE (default 3 minutes).
    public var offlineAfter: TimeInterval
    /// Silence after which a node is DISCONNECTED (default 15 minutes).
    public var disconnectedAfter: TimeInterval

    /// A `LivenessPolicy` from its parts.
    public init(offlineAfter: TimeInterval = 180, disconnectedAfter: TimeInterval = 900) {
        self.offlineAfter = offlineAfter
        self.disconnectedAfter = disconnectedAfter
    }

    /// ONLINE, OFFLINE or DISCONNECTED after the silence since `lastSeen`.
    public func liveness(lastSeen: Date, now: Date) -> NodeLiveness {
        let silence = now.timeIntervalSince(lastSeen)
        if silence < offlineAfter { return .online }
        if silence < disconnectedAfter { return .offline }
        return .disconnected
    }
}

/// The fields of a signed node message (`/register`, `/unregister`, `/status`) that the
/// signature covers, plus the organization that selects the keys.
public struct SignedNodeMessage: Sendable, Equatable {
    public var ip: String
    public var region: String
    public var timestamp: NodeTimestamp
    /// Base64 (standard alphabet, padded) RSASSA-PKCS1-v1_5 SHA-256 signature.
    public var signature: String
    /// The owning organization; absent for public nodes (platform key).
    public var organization: String?

    /// A `SignedNodeMessage` from its parts.
    public init(ip: String, region: String, timestamp: NodeTimestamp, signature: String, organization: String?) {
        self.ip = ip
        self.region = region
        self.timestamp = timestamp
        self.signature = signature
        self.organization = organization
    }

    /// The exact bytes the node signed: `ip|region|timestamp` (no trailing newline).
    public var signedBytes: [UInt8] { Array("\(ip)|\(region)|\(timestamp.signedText)".utf8) }
}

/// The URL of a node that registers without one, as the official installer names its hosts
/// (`SELF_URL` = `https://s3-<region>[-<provider>].<domain>`): a template over `{region}`,
/// `{provider}`, `{-provider}` (a dash and the provider, or nothing), `{domain}` and `{ip}`.
/// Region and provider are written lower-case and must be DNS labels (letters, digits, dashes);
/// a registration whose values are not gets `https://<ip>`, never a URL built from them.
public struct NodeURLTemplate: Sendable, Equatable {
    /// The installer's S3 host.
    public static let installerDefault = "https://s3-{region}{-provider}.{domain}"

    public var template: String
    public var domain: String

    /// Nodes under `domain`, addressed by `template`.
    public init(template: String = NodeURLTemplate.installerDefault, domain: String) {
        self.template = template
        self.domain = domain
    }

    /// The URL for a node in `region` of `provider`, or `nil` when they are not DNS labels.
    public func url(region: String, provider: String?, ip: String) -> String? {
        func label(_ text: String) -> String? {
            let lower = text.lowercased()
            guard !lower.isEmpty, lower.utf8.count <= 63, !lower.hasPrefix("-"), !lower.hasSuffix("-"),
                  lower.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else { return nil }
            return lower
        }
        guard let region = label(region) else { return nil }
        var providerLabel = ""
        if let provider, !provider.isEmpty {
            guard let checked = label(provider) else { return nil }
            providerLabel = checked
        }
        return template
            .replacingOccurrences(of: "{-provider}", with: providerLabel.isEmpty ? "" : "-" + providerLabel)
            .replacingOccurrences(of: "{provider}", with: providerLabel)
            .replacingOccurrences(of: "{region}", with: region)
            .replacingOccurrences(of: "{domain}", with: domain)
            .replacingOccurrences(of: "{ip}", with: ip)
    }
}

import FlashbackWire
import Foundation
import Registry

/// `POST /register` answer: the contract's envelope plus the node's id and credential.
struct RegisterResponse: Encodable, Sendable {
    var success = true
    var message: String
    var nodeId: String
    /// Bearer credential for ingest and authorize calls, and HMAC key for UDP (DESIGN.md §4.14).
    var nodeToken: String
}

/// `NodeInfo` (§2.4).
struct NodeInfoDTO: Encodable, Sendable {
    var id: String
    var ip: String
    var region: String
    var version: String
    var status: String
    var latencyMs: Double?
    var lastUpdated: String
    var url: String
    var id_org: String?
    var nodeServices: Int
    var provider: String?
    var createdAt: String

    init(_ node: BridgeNode, liveness: NodeLiveness) {
        id = node.id
        ip = node.ip
        region = node.region
        version = node.version
        status = liveness.rawValue
        latencyMs = node.latencyMs
        lastUpdated = node.lastSeen.flashbackTimestamp
        url = node.url
        id_org = node.organization
        nodeServices = node.nodeServices
        provider = node.provider
        createdAt = node.createdAt.flashbackTimestamp
    }
}

/// `{success, data: NodeInfo[], total}` (§7.1, §7.3).
struct NodeListResponse: Encodable, Sendable {
    var success = true
    var data: [NodeInfoDTO]
    var total: Int
}

/// An element of `GET /organization/{orgId}/key` (§6.4).
struct OrganizationKeyDTO: Encodable, Sendable {
    struct NodeKey: Encodable, Sendable {
        var keyId: String
        var nodeId: String
    }

    var id: String
    var orgId: String
    var publicKey: String
    var createdAt: String
    var nodeKeys: [NodeKey]

    init(_ listing: OrganizationKeyListing) {
        id = listing.key.id
        orgId = listing.key.organization
        publicKey = listing.key.publicKeyPEM
        createdAt = listing.key.createdAt.flashbackTimestamp
        nodeKeys = listing.nodeIPs.map { NodeKey(keyId: listing.key.id, nodeId: $0) }
    }
}

struct OrganizationKeyListResponse: Encodable, Sendable {
    var success = true
    var message: String
    var data: [OrganizationKeyDTO]
}

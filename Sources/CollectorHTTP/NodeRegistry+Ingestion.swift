import Ingestion
import Registry

/// The node registry as the ingest path sees it: the key of a node's datagrams, and liveness.
extension NodeRegistry: IngestNodeDirectory {
    /// The node and its token as the HMAC key of its datagrams; `nil` for an unknown, deleted or revoked node.
    public func datagramSigner(nodeID: String) -> DatagramSigner? {
        guard let node = node(id: nodeID), let token = credential(nodeID: node.id) else { return nil }
        return DatagramSigner(nodeID: node.id, organization: node.organization ?? "", key: token)
    }
}

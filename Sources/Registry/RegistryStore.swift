import Foundation

/// Where the node registry keeps its entities: the operations ``NodeRegistry`` needs, not a
/// key-value API, so that another database can serve them without touching the service.
///
/// The service holds the registry in memory and checks every rule there; a store only makes
/// each change durable, atomically, before the service applies it. A store shared by several
/// collectors is the judge of races between them: it throws ``StoreError/conflict(_:)`` when a
/// change breaks a rule another collector's change already took (the same node address twice),
/// and ``StoreError/unavailable(_:)`` when it cannot be reached. Node tokens reach a store
/// sealed, never in plaintext.
public protocol RegistryStore: Sendable {
    /// Every organization key and node, and the signatures still inside their window at `now`
    /// (a store may drop the expired ones while loading; a shared store, which answers
    /// ``recordSignature(_:until:)`` for every collector, may return none).
    func load(now: Date) async throws -> RegistryContents
    /// Creates or replaces an organization key.
    func save(_ key: OrganizationKey) async throws
    /// Creates or replaces a node.
    func save(_ node: BridgeNode) async throws
    /// Records a node's last-heard time and latency. Best effort: a failure is not reported
    /// and a store may batch these writes.
    func saveLastHeard(_ node: BridgeNode)
    /// Makes the last-heard times a store batches durable now (at shutdown, and periodically).
    func flushLastHeard() async throws
    /// Removes a node (unregistration).
    func deleteNode(id: String) async throws
    /// Deletes organization keys and saves the nodes they were linked to (now unlinked) in one
    /// atomic step.
    func deleteKeys(_ ids: [String], unlinking nodes: [BridgeNode]) async throws
    /// Records an accepted signature (its fingerprint) until `expiry`. Returns `false` when the
    /// store already holds it, so that a store shared by several collectors refuses a replay
    /// that another one accepted.
    func recordSignature(_ fingerprint: Data, until expiry: Date) async throws -> Bool
}

/// Everything a ``RegistryStore`` holds.
public struct RegistryContents: Sendable {
    public var keys: [OrganizationKey]
    public var nodes: [BridgeNode]
    /// Accepted signatures still inside their window.
    public var signatures: [(fingerprint: Data, expiry: Date)]

    /// A `RegistryContents` from its parts.
    public init(keys: [OrganizationKey] = [], nodes: [BridgeNode] = [], signatures: [(fingerprint: Data, expiry: Date)] = []) {
        self.keys = keys
        self.nodes = nodes
        self.signatures = signatures
    }
}

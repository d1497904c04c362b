import CollectorModel
import CollectorStore
import Crypto
import FlashbackWire
import Foundation
import Logging
import NIOPosix
import Synchronization

/// Settings of the node registry, all with the defaults of DESIGN.md §4.
public struct RegistrySettings: Sendable {
    /// Most keys an organization may hold (`--max-org-keys`).
    public var maxKeysPerOrganization = 5
    /// Accepted clock skew of a signed node message, either way (`--signature-window`).
    public var signatureWindow: TimeInterval = 300
    /// When silent nodes turn OFFLINE and DISCONNECTED.
    public var liveness = LivenessPolicy()
    /// PEM RSA public key that verifies public nodes (messages without `id_org`).
    public var platformPublicKeyPEM: String?
    /// Fsync registry writes (`--sync-writes`).
    public var syncWrites = false
    /// How a node that registers without a `url` is addressed (`--node-domain`,
    /// `--node-url-template`); `nil` keeps `https://<ip>`.
    public var nodeURLs: NodeURLTemplate?

    /// The defaults, as documented on each property.
    public init() {}
}

/// A node's registration request (`POST /register`), after JSON decoding.
public struct NodeRegistration: Sendable {
    public var message: SignedNodeMessage
    public var provider: String?
    public var version: String
    public var status: String
    public var nodeServices: Int?
    public var url: String?

    /// A `NodeRegistration` from its parts.
    public init(message: SignedNodeMessage, provider: String?, version: String, status: String, nodeServices: Int?, url: String?) {
        self.message = message
        self.provider = provider
        self.version = version
        self.status = status
        self.nodeServices = nodeServices
        self.url = url
    }
}

/// What a signed node message is used for. The replay guard refuses a signature twice for the
/// same purpose only: the official installer signs `/secrets` and `/register` with the same
/// `ip|region|timestamp` text, which gives the same signature when both fall in one second.
public enum SignaturePurpose: String, Sendable {
    /// `/register`, `/unregister`, `/status`.
    case node
    /// `POST /secrets`, the installer's environment download.
    case secrets
}

/// Organization keys and bridge nodes: signed registration, the node directory and node
/// credentials, persisted through a ``RegistryStore`` (``RocksDBRegistryStore`` embedded) and
/// mirrored in memory.
///
/// Every mutation is made durable in the store before the in-memory state changes and before
/// the caller is answered, so a restart finds exactly what was acknowledged. Reads come from
/// memory; with a store shared by several collectors, memory is a cache that ``reload()``
/// refreshes when another collector changed the store.
/// Thread-safety: `Sendable`; memory is behind one lock, and mutations run one at a time
/// through a ``SerialGate`` (each checks its rules, awaits the store, then applies).
public final class NodeRegistry: Sendable {
    private struct State {
        var keys: [String: OrganizationKey] = [:]
        var verifiers: [String: NodeSignatureVerifier] = [:]
        var nodes: [String: BridgeNode] = [:]
        /// `organization ?? ""` + "\u{0}" + ip → node id.
        var nodeByAddress: [String: String] = [:]
        /// node id → plaintext credential (for bearer checks and UDP HMAC).
        var tokens: [String: String] = [:]
        var replay = ReplayGuard()
        /// When each node's last-heard time was last written to the store.
        var persistedSeen: [String: Date] = [:]
    }

    private let state: Mutex<State>
    private let gate = SerialGate()
    private let shared = Mutex<SharedStoreHooks?>(nil)
    private let store: any RegistryStore
    private let secrets: SecretBox
    private let platformVerifier: NodeSignatureVerifier?
    private let now: @Sendable () -> Date
    private let logger: Logger
    /// The registry's settings.
    public let settings: RegistrySettings

    /// The registry of the embedded store in `storage` (the default, single-node setup).
    public convenience init(
        storage: CollectorStorage,
        secrets: SecretBox,
        settings: RegistrySettings = RegistrySettings(),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) throws {
        let store = RocksDBRegistryStore(storage: storage, sync: settings.syncWrites)
        try self.init(store: store, contents: try store.load(now: clock()), secrets: secrets, settings: settings,
                      clock: clock, logger: logger)
    }

    /// Loads the registry from `store`.
    /// - Parameter clock: the time source; tests inject one to move through liveness states.
    public static func open(
        store: any RegistryStore,
        secrets: SecretBox,
        settings: RegistrySettings = RegistrySettings(),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) async throws -> NodeRegistry {
        let contents = try await store.load(now: clock())
        return try NodeRegistry(store: store, contents: contents, secrets: secrets, settings: settings, clock: clock, logger: logger)
    }

    /// A registry over `store` whose contents were just loaded from it.
    public init(
        store: any RegistryStore,
        contents: RegistryContents,
        secrets: SecretBox,
        settings: RegistrySettings = RegistrySettings(),
        clock: @escaping @Sendable () -> Date = { Date() },
        logger: Logger
    ) throws {
        self.store = store
        self.secrets = secrets
        self.settings = settings
        self.now = clock
        self.logger = logger
        if let pem = settings.platformPublicKeyPEM {
            platformVerifier = try NodeSignatureVerifier(keyID: nil, pem: pem)
        } else {
            platformVerifier = nil
        }
        let loaded = try Self.state(of: contents, secrets: secrets, now: clock(), logger: logger)
        state = Mutex(loaded)
        logger.info("registry loaded", metadata: ["keys": "\(loaded.keys.count)", "nodes": "\(loaded.nodes.count)"])
    }

    private static func state(of contents: RegistryContents, secrets: SecretBox, now: Date, logger: Logger) throws -> State {
        var loaded = State()
        for key in contents.keys {
            loaded.keys[key.id] = key
            loaded.verifiers[key.id] = try NodeSignatureVerifier(keyID: key.id, pem: key.publicKeyPEM)
        }
        for node in contents.nodes {
            loaded.nodes[node.id] = node
            loaded.nodeByAddress[Self.addressKey(organization: node.organization, ip: node.ip)] = node.id
            if let sealed = node.sealedToken, !node.isDeleted {
                if let token = try? secrets.open(sealed, context: "node-token:\(node.id)") {
                    loaded.tokens[node.id] = String(decoding: token, as: UTF8.self)
                } else {
                    logger.error("a node credential cannot be opened with this master key; the node must register again", metadata: ["node": "\(node.id)"])
                }
            }
        }
        for entry in contents.signatures {
            loaded.replay.remember(entry.fingerprint, until: entry.expiry, now: now)
        }
        return loaded
    }

    /// Replaces memory with what the store holds now (another collector changed it). Runs
    /// between this process's own mutations; last-heard times only move forward, and the
    /// signatures this process accepted stay remembered.
    public func reload() async throws {
        try await gate.run { try await reloadInsideGate() }
    }

    // MARK: Organization keys

    /// Generates an RSA-2048 key pair for `organization`, stores the public key and returns the
    /// private key (PKCS#1 PEM), which is not kept anywhere.
    /// - Throws: `.invalid` when the organization already has the maximum number of keys.
    public func createKey(organization: String) async throws -> (key: OrganizationKey, privateKeyPEM: String) {
        await synchronize()
        let maximum = settings.maxKeysPerOrganization
        let full = state.withLock { state in state.keys.values.filter { $0.organization == organization }.count >= maximum }
        if full { throw RegistryError.invalid(Self.tooManyKeysMessage(maximum)) }
        // Key generation takes 0.1–0.4 s of CPU (seconds in a debug build): on the blocking pool,
        // so that Swift's cooperative threads (one a core) keep serving requests; outside the
        // lock, and the count is checked again.
        let (privatePEM, publicPEM) = try await NIOThreadPool.singleton.runIfActive { try OrganizationKeyGenerator.generate() }
        let key = OrganizationKey(id: UUID().uuidString.lowercased(), organization: organization, publicKeyPEM: publicPEM, createdAt: now())
        let verifier = try NodeSignatureVerifier(keyID: key.id, pem: publicPEM)
        try await gate.run {
            let count = state.withLock { state in state.keys.values.filter { $0.organization == organization }.count }
            guard count < maximum else { throw RegistryError.invalid(Self.tooManyKeysMessage(maximum)) }
            try await store.save(key)
            state.withLock { state in
                state.keys[key.id] = key
                state.verifiers[key.id] = verifier
            }
        }
        logger.notice("organization key created", metadata: ["organization": "\(organization)", "key": "\(key.id)"])
        return (key, privatePEM)
    }

    static func tooManyKeysMessage(_ maximum: Int) -> String {
        "Maximum number of organization keys (\(maximum)) has been reached. Delete an existing key before creating a new one."
    }

    /// The organization's keys, newest first, each with the IPs of the nodes linked to it.
    public func keys(organization: String) -> [OrganizationKeyListing] {
        state.withLock { state in
            state.keys.values
                .filter { $0.organization == organization }
                .sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
                .map { key in
                    let ips = state.nodes.values.filter { $0.keyID == key.id && !$0.isDeleted }.map(\.ip).sorted()
                    return OrganizationKeyListing(key: key, nodeIPs: ips)
                }
        }
    }

    /// Deletes every key of the organization; nodes linked to them lose the link and their
    /// credential and must register again with a new key.
    /// - Returns: how many keys were deleted.
    public func deleteAllKeys(organization: String) async throws -> Int {
        await synchronize()
        return try await gate.run {
            let ids = state.withLock { state in state.keys.values.filter { $0.organization == organization }.map(\.id) }
            try await deleteKeys(ids)
            return ids.count
        }
    }

    /// Deletes one key of the organization (cascading as ``deleteAllKeys(organization:)``).
    /// - Throws: `.notFound` when the key does not exist or belongs to another organization.
    public func deleteKey(organization: String, id: String) async throws {
        await synchronize()
        try await gate.run {
            let known = state.withLock { state in state.keys[id].map { $0.organization == organization } ?? false }
            guard known else {
                throw RegistryError.notFound("Organization key not found or does not belong to this organization")
            }
            try await deleteKeys([id])
        }
    }

    /// Inside the gate.
    private func deleteKeys(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let removed = Set(ids)
        let unlinked = state.withLock { state in
            state.nodes.values.filter { $0.keyID.map(removed.contains) == true }.map { node in
                var node = node
                node.keyID = nil
                node.sealedToken = nil
                node.tokenDigest = nil
                return node
            }
        }
        try await store.deleteKeys(ids, unlinking: unlinked)
        state.withLock { state in
            for id in ids {
                state.keys[id] = nil
                state.verifiers[id] = nil
            }
            for node in unlinked {
                state.nodes[node.id]?.keyID = nil
                state.nodes[node.id]?.sealedToken = nil
                state.nodes[node.id]?.tokenDigest = nil
                state.tokens[node.id] = nil
            }
        }
        logger.notice("organization keys deleted", metadata: ["keys": "\(ids.count)", "nodes_unlinked": "\(unlinked.count)"])
    }

    // MARK: Signed messages

    /// Checks a signed node message: timestamp inside the window, signature valid for one of the
    /// organization's keys (or the platform key), and not seen before. Records the signature.
    /// - Returns: the id of the key that verified it (`nil` for the platform key).
    /// - Parameter purpose: what the message is for; the replay guard keeps one record per
    ///   purpose, so the installer may sign `/secrets` and `/register` in the same second.
    public func verify(_ message: SignedNodeMessage, purpose: SignaturePurpose = .node) async throws -> String? {
        let current = now()
        let accepted = try state.withLock { state in try check(message, purpose: purpose, now: current, state: &state) }
        // The in-memory guard holds the fingerprint from here on, so a concurrent copy of the
        // message is refused while the store records it; the store refuses copies other
        // collectors sharing it accepted.
        let recorded: Bool
        do {
            recorded = try await store.recordSignature(accepted.fingerprint, until: accepted.expiry)
        } catch {
            state.withLock { $0.replay.forget(accepted.fingerprint) }
            throw error
        }
        guard recorded else { throw RegistryError.invalid(Self.replayMessage) }
        return accepted.keyID
    }

    static let replayMessage = "signature was already used (replay); sign a new message with a fresh timestamp"

    /// The PEM public key that verified a message: the organization key `keyID`, or the platform
    /// key for `nil`. `nil` when there is no such key (any more).
    public func verifyingKeyPEM(keyID: String?) -> String? {
        guard let keyID else { return settings.platformPublicKeyPEM }
        return state.withLock { $0.keys[keyID]?.publicKeyPEM }
    }

    /// Checks timestamp, signature and the in-memory replay guard, and reserves the signature there.
    private func check(_ message: SignedNodeMessage, purpose: SignaturePurpose, now current: Date, state: inout State) throws
        -> (keyID: String?, fingerprint: Data, expiry: Date) {
        let skew = message.timestamp.date.timeIntervalSince(current)
        guard abs(skew) <= settings.signatureWindow else {
            throw RegistryError.invalid("timestamp \(message.timestamp) is \(Int(saturating: abs(skew))) s \(skew < 0 ? "old" : "in the future"); signed messages must be within ±\(Int(settings.signatureWindow)) s of the server's clock")
        }
        guard let signature = Self.decodeBase64(message.signature) else {
            throw RegistryError.invalid("signature is not valid Base64")
        }
        let verifiers: [NodeSignatureVerifier]
        if let organization = message.organization {
            verifiers = state.keys.values.filter { $0.organization == organization }
                .sorted { $0.createdAt > $1.createdAt }
                .compactMap { state.verifiers[$0.id] }
            guard !verifiers.isEmpty else {
                throw RegistryError.invalid("organization \(organization) has no keys to verify the signature; create one with POST /organization/{orgId}/key")
            }
        } else {
            guard let platformVerifier else {
                throw RegistryError.invalid("id_org is required: this collector has no platform key for public nodes")
            }
            verifiers = [platformVerifier]
        }
        let bytes = message.signedBytes
        guard let verifier = verifiers.first(where: { $0.isValid(signature: signature, message: bytes) }) else {
            throw RegistryError.invalid(message.organization == nil
                ? "signature does not verify with the platform key"
                : "signature does not verify with any key of organization \(message.organization ?? "")")
        }
        let fingerprint = ReplayGuard.fingerprint(signature, purpose: purpose)
        guard !state.replay.wasSeen(fingerprint, now: current) else {
            throw RegistryError.invalid(Self.replayMessage)
        }
        let expiry = message.timestamp.date.addingTimeInterval(settings.signatureWindow + 1)
        state.replay.remember(fingerprint, until: expiry, now: current)
        return (verifier.keyID, fingerprint, expiry)
    }

    static func decodeBase64(_ text: String) -> [UInt8]? {
        let compact = text.filter { !$0.isWhitespace }
        guard !compact.isEmpty, let data = Data(base64Encoded: compact) else { return nil }
        return Array(data)
    }

    // MARK: Registration

    /// Verifies and upserts a node by (organization, ip); rotates its credential.
    /// - Returns: the node and its new credential (shown to the node once).
    public func register(_ registration: NodeRegistration) async throws -> (node: BridgeNode, token: String) {
        let message = registration.message
        let keyID = try await verify(message)
        await synchronize()
        return try await gate.run {
            do {
                return try await upsert(registration, keyID: keyID)
            } catch StoreError.conflict {
                // Another collector sharing the store registered this address first: take its
                // record and register over it.
                try await reloadInsideGate()
                return try await upsert(registration, keyID: keyID)
            }
        }
    }

    /// Inside the gate.
    private func upsert(_ registration: NodeRegistration, keyID: String?) async throws -> (node: BridgeNode, token: String) {
        let message = registration.message
        let current = now()
        let address = Self.addressKey(organization: message.organization, ip: message.ip)
        var node = try state.withLock { state -> BridgeNode in
            if let id = state.nodeByAddress[address], let existing = state.nodes[id] {
                // An administrator's soft delete holds until an administrator restores the node.
                guard !existing.isDeleted else {
                    throw RegistryError.forbidden("Node \(message.ip) was deleted by an administrator of its organization; "
                        + "an administrator restores it with POST /organization/{orgId}/node/{nodeId}/restore")
                }
                return existing
            }
            return BridgeNode(
                id: UUID().uuidString.lowercased(), ip: message.ip, region: message.region,
                provider: nil, version: registration.version, reportedStatus: registration.status,
                nodeServices: 1, url: "", organization: message.organization, createdAt: current,
                lastSeen: current, deletedAt: nil, keyID: nil, latencyMs: nil, sealedToken: nil)
        }
        let token = Self.makeToken(nodeID: node.id)
        node.region = message.region
        node.provider = registration.provider ?? node.provider
        node.version = registration.version
        node.reportedStatus = registration.status
        node.nodeServices = registration.nodeServices ?? (node.nodeServices == 0 ? 1 : node.nodeServices)
        node.url = registration.url
            ?? settings.nodeURLs?.url(region: message.region, provider: registration.provider, ip: message.ip)
            ?? (node.url.isEmpty ? "https://\(message.ip)" : node.url)
        node.lastSeen = current
        node.keyID = keyID
        node.sealedToken = try secrets.seal(Array(token.utf8), context: "node-token:\(node.id)")
        node.tokenDigest = Array(SHA256.hash(data: Array(token.utf8)))
        try await store.save(node)
        let saved = node
        state.withLock { state in
            state.nodes[saved.id] = saved
            state.nodeByAddress[address] = saved.id
            state.tokens[saved.id] = token
        }
        return (node, token)
    }

    /// ``reload()`` for a caller already inside the gate.
    private func reloadInsideGate() async throws {
        let contents = try await store.load(now: now())
        let fresh = try Self.state(of: contents, secrets: secrets, now: now(), logger: logger)
        state.withLock { state in
            var merged = fresh
            for (id, node) in merged.nodes {
                if let mine = state.nodes[id], mine.lastSeen > node.lastSeen {
                    merged.nodes[id]?.lastSeen = mine.lastSeen
                    merged.nodes[id]?.latencyMs = mine.latencyMs
                }
            }
            merged.replay = state.replay
            merged.persistedSeen = state.persistedSeen
            state = merged
        }
    }

    /// Verifies an unregistration and removes the node with its links and credential.
    /// Without a region the message is rebuilt with the node's stored region (DESIGN.md §4.3).
    /// - Throws: `.notFound` when no such node is registered.
    public func unregister(ip: String, region: String?, timestamp: NodeTimestamp, signature: String, organization: String?) async throws {
        await synchronize()
        let address = Self.addressKey(organization: organization, ip: ip)
        let knownRegion = state.withLock { state in state.nodeByAddress[address].flatMap { state.nodes[$0] }?.region }
        // The signature is checked before anything about the address is revealed. Without a
        // region the node's stored one is used; for an unknown address that leaves an empty
        // region, so the caller hears the same refusal as for a wrong signature.
        let signedRegion = region ?? knownRegion ?? ""
        _ = try await verify(SignedNodeMessage(ip: ip, region: signedRegion, timestamp: timestamp, signature: signature, organization: organization))
        try await gate.run {
            guard let id = state.withLock({ state in state.nodeByAddress[address].flatMap { state.nodes[$0] }?.id }) else {
                throw RegistryError.notFound("Node \(ip) is not registered")
            }
            try await store.deleteNode(id: id)
            state.withLock { state in
                state.nodes[id] = nil
                state.nodeByAddress[address] = nil
                state.tokens[id] = nil
            }
        }
    }

    // MARK: Directory

    /// Nodes offering any of `services` (a `ServiceFlag` bitmask; 0 = all) that are public or
    /// belong to `organization`, in a stable order (newest id first).
    public func nodes(services: Int, organization: String?) -> [BridgeNode] {
        state.withLock { state in
            state.nodes.values
                .filter { !$0.isDeleted && ($0.organization == nil || $0.organization == organization) }
                .filter { services == 0 || $0.nodeServices & services != 0 }
                .sorted { $0.id > $1.id }
        }
    }

    /// The organization's nodes that are not deleted, ordered by id descending.
    public func nodes(organization: String) -> [BridgeNode] {
        state.withLock { state in
            state.nodes.values.filter { $0.organization == organization && !$0.isDeleted }.sorted { $0.id > $1.id }
        }
    }

    /// The registered (not deleted) node with this address in `organization` (`nil`: public nodes).
    public func node(organization: String?, ip: String) -> BridgeNode? {
        state.withLock { state in
            state.nodeByAddress[Self.addressKey(organization: organization, ip: ip)].flatMap { state.nodes[$0] }.flatMap { $0.isDeleted ? nil : $0 }
        }
    }

    /// One node by id, whatever its organization.
    public func node(id: String) -> BridgeNode? {
        state.withLock { $0.nodes[id] }
    }

    /// Every node that is not deleted, public and of every organization, by id.
    public func allNodes() -> [BridgeNode] {
        state.withLock { state in state.nodes.values.filter { !$0.isDeleted }.sorted { $0.id < $1.id } }
    }

    /// The nodes (deleted ones included) with these ids, under one lock.
    public func nodes(ids: some Sequence<String>) -> [String: BridgeNode] {
        state.withLock { state in
            var found: [String: BridgeNode] = [:]
            for id in ids where found[id] == nil {
                if let node = state.nodes[id] { found[id] = node }
            }
            return found
        }
    }

    /// Soft-deletes an organization's node (by UUID or IP) and revokes its credential.
    /// - Throws: `.notFound` (unknown or another organization's), `.conflict` (already deleted).
    public func deleteNode(organization: String, idOrIP: String) async throws {
        await synchronize()
        try await gate.run {
            var node = try organizationNode(organization: organization, idOrIP: idOrIP)
            guard !node.isDeleted else { throw RegistryError(.conflict, "Node is already deleted") }
            node.deletedAt = now()
            node.sealedToken = nil
            node.tokenDigest = nil
            try await store.save(node)
            let saved = node
            state.withLock { state in
                state.nodes[saved.id] = saved
                state.tokens[saved.id] = nil
            }
        }
    }

    private func organizationNode(organization: String, idOrIP: String) throws -> BridgeNode {
        try state.withLock { state in
            let id = state.nodes[idOrIP] != nil ? idOrIP : state.nodeByAddress[Self.addressKey(organization: organization, ip: idOrIP)]
            guard let id, let node = state.nodes[id], node.organization == organization else {
                throw RegistryError.notFound("Node not found in this organization")
            }
            return node
        }
    }

    /// Restores an organization's soft-deleted node (by UUID or IP); it registers again to get a
    /// new credential.
    /// - Throws: `.notFound` (unknown or another organization's), `.conflict` (not deleted).
    public func restoreNode(organization: String, idOrIP: String) async throws -> BridgeNode {
        await synchronize()
        return try await gate.run {
            var node = try organizationNode(organization: organization, idOrIP: idOrIP)
            guard node.isDeleted else { throw RegistryError(.conflict, "Node is not deleted") }
            node.deletedAt = nil
            try await store.save(node)
            let saved = node
            state.withLock { $0.nodes[saved.id] = saved }
            return saved
        }
    }

    /// Records that a node was heard from (an ingest request or a status report). The time is
    /// kept in memory at once and written to the store at most every 30 s per node.
    public func markSeen(nodeID: String, latencyMs: Double? = nil) {
        let current = now()
        state.withLock { state in
            guard var node = state.nodes[nodeID], !node.isDeleted else { return }
            node.lastSeen = current
            if let latencyMs { node.latencyMs = latencyMs }
            state.nodes[nodeID] = node
            if let persisted = state.persistedSeen[nodeID], current.timeIntervalSince(persisted) < 30 { return }
            store.saveLastHeard(node)
            state.persistedSeen[nodeID] = current
        }
    }

    /// Writes every last-heard time newer than the store's (``markSeen(nodeID:latencyMs:)``
    /// writes at most every 30 s per node): before a checkpoint of an online backup and at a
    /// clean shutdown, so that neither loses the nodes' last reports.
    public func persistLastHeard() {
        state.withLock { state in
            for (id, node) in state.nodes where !node.isDeleted {
                if let persisted = state.persistedSeen[id], persisted >= node.lastSeen { continue }
                store.saveLastHeard(node)
                state.persistedSeen[id] = node.lastSeen
            }
        }
    }

    /// The liveness of `node` now.
    public func liveness(of node: BridgeNode) -> NodeLiveness {
        settings.liveness.liveness(lastSeen: node.lastSeen, now: now())
    }

    /// The current time of the registry's clock.
    public var currentTime: Date { now() }

    // MARK: Node credentials

    /// The node a credential belongs to, or `nil` when it is unknown, revoked or malformed.
    /// Comparison is constant-time.
    public func authenticate(nodeToken: String) -> BridgeNode? {
        guard let nodeID = Self.nodeID(inToken: nodeToken) else { return nil }
        return state.withLock { state in
            guard let expected = state.tokens[nodeID], let node = state.nodes[nodeID], !node.isDeleted else { return nil }
            if let digest = node.tokenDigest {
                return ConstantTime.equals(digest, Array(SHA256.hash(data: Array(nodeToken.utf8)))) ? node : nil
            }
            return ConstantTime.equals(expected.utf8, nodeToken.utf8) ? node : nil
        }
    }

    /// Like ``authenticate(nodeToken:)``; when the token is unknown and a shared store backs the
    /// registry, the refresh given to ``refreshOnMiss(_:)`` runs first (the node may have
    /// registered through another collector a moment ago).
    public func authenticateRefreshing(nodeToken: String) async -> BridgeNode? {
        if let node = authenticate(nodeToken: nodeToken) { return node }
        guard Self.nodeID(inToken: nodeToken) != nil, let hooks = shared.withLock({ $0 }) else { return nil }
        await hooks.afterMiss()
        return authenticate(nodeToken: nodeToken)
    }

    /// Cluster mode: the registry's store is shared, so memory may lag behind it. `barrier`
    /// brings memory up to what the store held when it was called (before every mutation and
    /// ``synchronize()``); `afterMiss` runs when a token is unknown (it must limit itself,
    /// since anyone can send unknown tokens).
    public func useSharedStore(_ hooks: SharedStoreHooks) {
        shared.withLock { $0 = hooks }
    }

    /// Brings memory up to the shared store's state now (cluster mode; nothing otherwise), so a
    /// read sees every change committed before it, through whichever collector.
    public func synchronize() async {
        await shared.withLock({ $0 })?.barrier()
    }

    /// The plaintext credential of a node (the HMAC key of its UDP datagrams), if it has one.
    public func credential(nodeID: String) -> String? {
        state.withLock { $0.tokens[nodeID] }
    }

    /// Token format: `fbn1.<node id>.<43 base64url characters of 32 random bytes>`.
    static func makeToken(nodeID: String) -> String {
        let random = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        let encoded = random.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return "fbn1.\(nodeID).\(encoded)"
    }

    static func nodeID(inToken token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "fbn1", !parts[1].isEmpty, parts[1].count <= 64 else { return nil }
        return String(parts[1])
    }

    // MARK: Keys

    static func addressKey(organization: String?, ip: String) -> String {
        (organization ?? "") + "\u{0}" + ip
    }

}

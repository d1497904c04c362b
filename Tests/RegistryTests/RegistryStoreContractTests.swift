import CollectorModel
import CollectorStore
import CollectorTesting
import ControlPlanePostgres
import Crypto
import Foundation
import Logging
import Registry
import Testing

/// The contract every ``RegistryStore`` keeps, run against each backend given to it: keys and
/// nodes load back exactly, deleting keys unlinks their nodes atomically, last-heard times
/// persist, and an accepted signature is refused a second time until it expires.
@Suite("Registry store contract")
struct RegistryStoreContractTests {
    /// Every implementation the suite runs against: the embedded one and cluster mode's.
    static func backends() -> [any StoreBackend<any RegistryStore>] {
        [
            RocksDBStoreBackend<any RegistryStore>(prefix: "registry-store") { RocksDBRegistryStore(storage: $0) },
            PostgresStoreBackend<any RegistryStore> { PostgresRegistryStore(database: $0) },
        ]
    }

    /// The backends several collectors share, which settle races themselves.
    static func sharedBackends() -> [any StoreBackend<any RegistryStore>] {
        backends().filter(\.isShared)
    }

    static let created = Date(timeIntervalSince1970: 1_767_225_600)

    static func key(_ id: String) -> OrganizationKey {
        OrganizationKey(id: id, organization: "org-a", publicKeyPEM: "-----BEGIN PUBLIC KEY-----\n\(id)\n-----END PUBLIC KEY-----\n", createdAt: created)
    }

    static func node(_ id: String, ip: String, key: String?) -> BridgeNode {
        BridgeNode(id: id, ip: ip, region: "eu-central-1", provider: "AWS", version: "1.2.0", reportedStatus: "running", nodeServices: 1,
                   url: "https://s3-eu-central-1-aws.example.test", organization: "org-a", createdAt: created, lastSeen: created,
                   keyID: key, sealedToken: key.map { _ in [4, 5, 6] })
    }

    @Test(arguments: backends())
    func keysAndNodesLoadBackExactly(_ backend: any StoreBackend<any RegistryStore>) async throws {
        defer { backend.discard() }
        let empty = try await backend.open().load(now: Self.created)
        #expect(empty.keys.isEmpty && empty.nodes.isEmpty && empty.signatures.isEmpty, "\(backend.name): a new store is empty")
        let store = try await backend.open()
        try await store.save(Self.key("k1"))
        try await store.save(Self.node("n1", ip: "203.0.113.10", key: "k1"))
        try await store.save(Self.node("n2", ip: "203.0.113.11", key: "k1"))
        try await store.deleteNode(id: "n2")
        var seen = Self.node("n1", ip: "203.0.113.10", key: "k1")
        seen.lastSeen = Self.created.addingTimeInterval(90)
        seen.latencyMs = 12.5
        store.saveLastHeard(seen)
        try await store.flushLastHeard()
        let loaded = try await backend.open().load(now: Self.created)
        #expect(loaded.keys == [Self.key("k1")], "\(backend.name)")
        #expect(loaded.nodes == [seen], "\(backend.name): the deleted node is gone, the last-heard time kept")
    }

    @Test(arguments: backends())
    func deletingKeysUnlinksTheirNodesTogether(_ backend: any StoreBackend<any RegistryStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        try await store.save(Self.key("k1"))
        try await store.save(Self.key("k2"))
        try await store.save(Self.node("n1", ip: "203.0.113.10", key: "k1"))
        let unlinked = Self.node("n1", ip: "203.0.113.10", key: nil)
        try await store.deleteKeys(["k1"], unlinking: [unlinked])
        let loaded = try await backend.open().load(now: Self.created)
        #expect(loaded.keys == [Self.key("k2")], "\(backend.name)")
        #expect(loaded.nodes == [unlinked], "\(backend.name)")
    }

    @Test(arguments: backends())
    func anAcceptedSignatureIsRefusedAgainUntilItExpires(_ backend: any StoreBackend<any RegistryStore>) async throws {
        defer { backend.discard() }
        let fingerprint = Data(SHA256.hash(data: Array("signature".utf8)))
        let other = Data(SHA256.hash(data: Array("another".utf8)))
        let expiry = Self.created.addingTimeInterval(301)
        let store = try await backend.open()
        #expect(try await store.recordSignature(fingerprint, until: expiry), "\(backend.name): first use is accepted")
        #expect(try await !store.recordSignature(fingerprint, until: expiry), "\(backend.name): the same signature again is a replay")
        #expect(try await store.recordSignature(other, until: expiry.addingTimeInterval(-100)), "\(backend.name)")
        // After a restart inside the window both are still known; once expired they are gone.
        let reopened = try await backend.open()
        #expect(try await !reopened.recordSignature(fingerprint, until: expiry), "\(backend.name): a restart does not reopen the window")
        // What a load returns is the store's choice (a shared store answers every check
        // itself), but never a signature outside its window.
        let inside = try await reopened.load(now: Self.created)
        #expect(Set(inside.signatures.map(\.fingerprint)).isSubset(of: [fingerprint, other]), "\(backend.name)")
        let later = try await backend.open().load(now: expiry.addingTimeInterval(-50))
        #expect(Set(later.signatures.map(\.fingerprint)).isSubset(of: [fingerprint]), "\(backend.name): the expired one is dropped")
        #expect(try await backend.open().load(now: expiry.addingTimeInterval(1)).signatures.isEmpty, "\(backend.name)")
    }

    /// Two collectors registering the same address at once under different ids: the store keeps
    /// the first and refuses the second, which then registers over the first.
    @Test(arguments: sharedBackends())
    func oneNodePerAddress(_ backend: any StoreBackend<any RegistryStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        try await store.save(Self.node("n1", ip: "203.0.113.10", key: nil))
        await #expect(throws: StoreError.self, "\(backend.name)") {
            try await store.save(Self.node("n2", ip: "203.0.113.10", key: nil))
        }
        var moved = Self.node("n1", ip: "203.0.113.10", key: nil)
        moved.version = "1.3.0"
        try await store.save(moved)
        #expect(try await backend.open().load(now: Self.created).nodes == [moved], "\(backend.name)")
    }

    /// Last-heard times come in batches and only move forward.
    @Test(arguments: sharedBackends())
    func lastHeardOnlyMovesForward(_ backend: any StoreBackend<any RegistryStore>) async throws {
        defer { backend.discard() }
        let store = try await backend.open()
        var node = Self.node("n1", ip: "203.0.113.10", key: nil)
        try await store.save(node)
        node.lastSeen = Self.created.addingTimeInterval(120)
        store.saveLastHeard(node)
        try await store.flushLastHeard()
        node.lastSeen = Self.created.addingTimeInterval(60)
        store.saveLastHeard(node)
        try await store.flushLastHeard()
        #expect(try await backend.open().load(now: Self.created).nodes.first?.lastSeen == Self.created.addingTimeInterval(120), "\(backend.name)")
    }
}

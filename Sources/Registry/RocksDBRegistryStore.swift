import CollectorModel
import CollectorStore
import Foundation
import RocksDB

/// The embedded ``RegistryStore``: JSON records in the `registry` column family (`orgkey/<id>`,
/// `node/<id>`) and accepted signatures as `replay/<expiry u64 BE><sha256>` (empty values), so
/// that expired ones are dropped with one range delete. Written with the WAL on.
public struct RocksDBRegistryStore: RegistryStore {
    private let database: Database
    private let family: ColumnFamily
    /// fsync every write (`--sync-writes`); last-heard updates never wait for it.
    private let sync: Bool

    static let keyPrefix = Array("orgkey/".utf8)
    static let nodePrefix = Array("node/".utf8)
    static let replayPrefix = Array("replay/".utf8)

    /// The registry records in `storage`'s `registry` column family; `sync` fsyncs every write.
    public init(storage: CollectorStorage, sync: Bool = false) {
        database = storage.database
        family = storage.columnFamily(.registry)
        self.sync = sync
    }

    /// See ``RegistryStore``.
    public func load(now: Date) throws -> RegistryContents {
        var contents = RegistryContents()
        let decoder = JSONDecoder()
        try database.scan(family, lowerBound: Self.keyPrefix, upperBound: Self.keyPrefix.prefixUpperBound) { _, value in
            contents.keys.append(try decoder.decode(OrganizationKey.self, from: Data(value)))
            return true
        }
        try database.scan(family, lowerBound: Self.nodePrefix, upperBound: Self.nodePrefix.prefixUpperBound) { _, value in
            contents.nodes.append(try decoder.decode(BridgeNode.self, from: Data(value)))
            return true
        }
        var lastExpired: [UInt8]?
        try database.scan(family, lowerBound: Self.replayPrefix, upperBound: Self.replayPrefix.prefixUpperBound) { key, _ in
            if let entry = Self.parse(replayKey: Array(key)) {
                if entry.expiry > now {
                    contents.signatures.append(entry)
                } else {
                    lastExpired = Array(key)
                }
            }
            return true
        }
        // Keys sort by expiry, so every expired entry lies before the last expired one.
        if let lastExpired {
            try database.deleteRange(from: Self.replayPrefix, to: lastExpired + [0], in: family)
        }
        return contents
    }

    /// See ``RegistryStore``.
    public func save(_ key: OrganizationKey) throws {
        try database.put(Self.keyPrefix + Array(key.id.utf8), try JSONEncoder().encode(key), in: family, sync: sync)
    }

    /// See ``RegistryStore``.
    public func save(_ node: BridgeNode) throws {
        try database.put(Self.nodePrefix + Array(node.id.utf8), try JSONEncoder().encode(node), in: family, sync: sync)
    }

    /// See ``RegistryStore``.
    public func saveLastHeard(_ node: BridgeNode) {
        guard let encoded = try? JSONEncoder().encode(node) else { return }
        try? database.put(Self.nodePrefix + Array(node.id.utf8), encoded, in: family)
    }

    /// Last-heard times are written as they come (without waiting for an fsync).
    public func flushLastHeard() {}

    /// See ``RegistryStore``.
    public func deleteNode(id: String) throws {
        try database.delete(Self.nodePrefix + Array(id.utf8), in: family, sync: sync)
    }

    /// See ``RegistryStore``.
    public func deleteKeys(_ ids: [String], unlinking nodes: [BridgeNode]) throws {
        let batch = WriteBatch()
        let encoder = JSONEncoder()
        for id in ids { batch.delete(Self.keyPrefix + Array(id.utf8), in: family) }
        for node in nodes { batch.put(Self.nodePrefix + Array(node.id.utf8), try encoder.encode(node), in: family) }
        try database.write(batch, sync: sync)
    }

    /// The same signature always has the same expiry (it signs its timestamp), so one lookup of
    /// its key tells whether it was recorded. One process owns the embedded store, and
    /// ``NodeRegistry`` checks its in-memory guard first, so this rarely finds one.
    public func recordSignature(_ fingerprint: Data, until expiry: Date) throws -> Bool {
        let key = Self.replayKey(fingerprint: fingerprint, expiry: expiry)
        if try database.get(key, in: family) != nil { return false }
        try database.put(key, [], in: family, sync: sync)
        return true
    }

    static func replayKey(fingerprint: Data, expiry: Date) -> [UInt8] {
        let seconds = UInt64(max(0, Int64(saturating: expiry.timeIntervalSince1970)))
        return replayPrefix + withUnsafeBytes(of: seconds.bigEndian) { Array($0) } + Array(fingerprint)
    }

    /// Parses a persisted signature; `nil` for a key of another shape.
    static func parse(replayKey key: [UInt8]) -> (fingerprint: Data, expiry: Date)? {
        guard key.count == replayPrefix.count + 8 + 32, key.starts(with: replayPrefix) else { return nil }
        let seconds = key[replayPrefix.count..<(replayPrefix.count + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (Data(key[(replayPrefix.count + 8)...]), Date(timeIntervalSince1970: TimeInterval(seconds)))
    }
}

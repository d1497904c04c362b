import CollectorModel
import Foundation
import PostgresNIO
import Registry
import Synchronization

/// The ``RegistryStore`` of cluster mode: organization keys and nodes in PostgreSQL, shared by
/// every collector replica.
///
/// - The unique address constraint settles two replicas registering the same node at once (the
///   loser's ``StoreError/conflict(_:)`` makes its registry reload and register over the winner).
/// - The replay guard is the `registry_signatures` table: a signature one replica accepted is
///   refused by every other. ``load(now:)`` returns none of them: each replica asks the table.
/// - Last-heard times are buffered and written in batches (``flushLastHeard()``), one statement
///   per batch, into their own table, so reports do not fire the change trigger.
public final class PostgresRegistryStore: RegistryStore {
    private let database: ControlPlaneDatabase
    private let heard = Mutex<[String: (lastSeen: Date, latencyMs: Double?)]>([:])
    private let version = Atomic<Int64>(-1)

    /// The change version the last ``load(now:)`` saw (-1 before the first).
    public var loadedVersion: Int64 { version.load(ordering: .acquiring) }

    /// The registry tables of `database` (migrated by ``ControlPlaneDatabase/migrate()``).
    public init(database: ControlPlaneDatabase) {
        self.database = database
    }

    /// See ``RegistryStore``; signatures stay in the table (see the type's notes).
    public func load(now: Date) async throws -> RegistryContents {
        let (contents, seen) = try await database.snapshot("load the registry", cache: "registry") { connection, logger in
            var contents = RegistryContents()
            let decoder = JSONDecoder()
            for try await record in try await connection.query("SELECT record::text FROM registry_keys", logger: logger).decode(String.self) {
                contents.keys.append(try decoder.decode(OrganizationKey.self, from: Data(record.utf8)))
            }
            let nodes = try await connection.query("""
                SELECT n.record::text, h.last_seen, h.latency_ms
                FROM registry_nodes n LEFT JOIN registry_node_heard h ON h.node_id = n.id
                """, logger: logger).decode((String, Date?, Double?).self)
            for try await (record, lastSeen, latency) in nodes {
                var node = try decoder.decode(BridgeNode.self, from: Data(record.utf8))
                if let lastSeen, lastSeen > node.lastSeen {
                    node.lastSeen = lastSeen
                    node.latencyMs = latency ?? node.latencyMs
                }
                contents.nodes.append(node)
            }
            return contents
        }
        version.store(seen, ordering: .releasing)
        return contents
    }

    /// See ``RegistryStore``.
    public func save(_ key: OrganizationKey) async throws {
        let record = try Self.json(key)
        try await database.versionedWrite("save an organization key", cache: "registry", loaded: version) { connection in
            try await connection.query("""
                INSERT INTO registry_keys (id, organization, created_at, record) VALUES (\(key.id), \(key.organization), \(key.createdAt), \(record)::jsonb)
                ON CONFLICT (id) DO UPDATE SET organization = EXCLUDED.organization, record = EXCLUDED.record
                """, logger: connection.logger)
        }
    }

    /// See ``RegistryStore``.
    public func save(_ node: BridgeNode) async throws {
        let record = try Self.json(node)
        try await database.versionedWrite("save a node", cache: "registry", loaded: version) { connection in
            try await connection.query(try Self.upsert(node, record: record), logger: connection.logger)
        }
    }

    static func upsert(_ node: BridgeNode, record: String) throws -> PostgresQuery {
        let digest = node.tokenDigest.map { Data($0) }
        return try """
            INSERT INTO registry_nodes (id, organization, ip, token_sha256, deleted, record)
            VALUES (\(node.id), \(node.organization ?? ""), \(node.ip), \(digest), \(node.isDeleted), \(record)::jsonb)
            ON CONFLICT (id) DO UPDATE SET organization = EXCLUDED.organization, ip = EXCLUDED.ip,
                token_sha256 = EXCLUDED.token_sha256, deleted = EXCLUDED.deleted, record = EXCLUDED.record
            """
    }

    /// Buffers the time; ``flushLastHeard()`` writes it.
    public func saveLastHeard(_ node: BridgeNode) {
        heard.withLock { $0[node.id] = (node.lastSeen, node.latencyMs) }
    }

    /// Writes the buffered last-heard times in one statement per 1,000 nodes (a time only moves
    /// forward). On failure they go back into the buffer for the next flush.
    public func flushLastHeard() async throws {
        _ = try await writeLastHeard()
    }

    /// ``flushLastHeard()``, telling how many nodes were written.
    public func writeLastHeard() async throws -> Int {
        let batch = heard.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        guard !batch.isEmpty else { return 0 }
        do {
            let entries = Array(batch)
            for start in stride(from: 0, to: entries.count, by: 1000) {
                let chunk = Array(entries[start..<min(start + 1000, entries.count)])
                var sql = "INSERT INTO registry_node_heard (node_id, last_seen, latency_ms) VALUES "
                var bindings = PostgresBindings(capacity: chunk.count * 3)
                for (index, entry) in chunk.enumerated() {
                    sql += index == 0 ? "" : ", "
                    sql += "($\(index * 3 + 1), $\(index * 3 + 2), $\(index * 3 + 3))"
                    bindings.append(entry.key)
                    bindings.append(entry.value.lastSeen)
                    try bindings.append(entry.value.latencyMs)
                }
                sql += """
                     ON CONFLICT (node_id) DO UPDATE SET last_seen = GREATEST(registry_node_heard.last_seen, EXCLUDED.last_seen),
                    latency_ms = coalesce(EXCLUDED.latency_ms, registry_node_heard.latency_ms)
                    """
                let query = PostgresQuery(unsafeSQL: sql, binds: bindings)
                try await database.perform("write last-heard times") { client in try await client.query(query) }
            }
            return batch.count
        } catch {
            heard.withLock { pending in
                for (id, entry) in batch where (pending[id]?.lastSeen ?? .distantPast) < entry.lastSeen { pending[id] = entry }
            }
            throw error
        }
    }

    /// See ``RegistryStore``.
    public func deleteNode(id: String) async throws {
        try await database.versionedWrite("delete a node", cache: "registry", loaded: version) { connection in
            try await connection.query("DELETE FROM registry_nodes WHERE id = \(id)", logger: connection.logger)
            try await connection.query("DELETE FROM registry_node_heard WHERE node_id = \(id)", logger: connection.logger)
        }
    }

    /// See ``RegistryStore``.
    public func deleteKeys(_ ids: [String], unlinking nodes: [BridgeNode]) async throws {
        let records = try nodes.map { ($0, try Self.json($0)) }
        try await database.versionedWrite("delete organization keys", cache: "registry", loaded: version) { connection in
            try await connection.query("DELETE FROM registry_keys WHERE id = ANY(\(ids))", logger: connection.logger)
            for (node, record) in records {
                try await connection.query(try Self.upsert(node, record: record), logger: connection.logger)
            }
        }
    }

    /// See ``RegistryStore``: one insert that finds out whether the row was there.
    public func recordSignature(_ fingerprint: Data, until expiry: Date) async throws -> Bool {
        try await database.perform("record a signature") { client in
            let rows = try await client.query("""
                INSERT INTO registry_signatures (fingerprint, expires_at) VALUES (\(fingerprint), \(expiry))
                ON CONFLICT (fingerprint) DO NOTHING RETURNING 1
                """)
            var inserted = false
            for try await _ in rows { inserted = true }
            return inserted
        }
    }

    /// Deletes the signatures whose window has passed.
    /// - Returns: how many were deleted.
    @discardableResult
    public func pruneSignatures(now: Date) async throws -> Int {
        try await database.perform("prune signatures") { client in
            var count = 0
            for try await _ in try await client.query("DELETE FROM registry_signatures WHERE expires_at <= \(now) RETURNING 1") { count += 1 }
            return count
        }
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }
}

import Foundation
import Logging
import PostgresNIO

/// The control plane's tables, one migration per schema version. Every entity is kept as the
/// JSON record the embedded store keeps (`record`), next to the columns the database's
/// constraints need to settle races between collectors: one node per address, one live bucket
/// or repository per name and organization, one key per access key id.
///
/// A trigger on each entity table sends `NOTIFY flashback_changes, '<table>:<id>'` with every
/// committed change, whoever makes it, so every collector can refresh its cache, and counts the
/// change in `flashback_change_version` (a row per cache, `registry` and `catalog`, updated in
/// the changing transaction): a collector that loaded version N and reads a larger number knows
/// its cache misses a change committed since (``ControlPlaneSync/barrier(_:)``).
enum Schema {
    /// A migration: the statements that take the schema from `version - 1` to `version`.
    struct Migration: Sendable {
        let version: Int
        let summary: String
        let statements: [String]
    }

    /// The channel the change triggers notify on.
    static let changeChannel = "flashback_changes"

    /// Any fixed number: the advisory lock that serialises migrations across collectors.
    static let migrationLock: Int64 = 0x466C_6173_6862_6B31

    static let migrations: [Migration] = [
        Migration(version: 1, summary: "registry and catalog tables, change notifications", statements: [
            """
            CREATE TABLE registry_keys (
                id text PRIMARY KEY,
                organization text NOT NULL,
                created_at timestamptz NOT NULL,
                record jsonb NOT NULL)
            """,
            "CREATE INDEX registry_keys_organization ON registry_keys (organization)",
            """
            CREATE TABLE registry_nodes (
                id text PRIMARY KEY,
                organization text NOT NULL,
                ip text NOT NULL,
                token_sha256 bytea,
                deleted boolean NOT NULL,
                record jsonb NOT NULL,
                CONSTRAINT registry_nodes_one_per_address UNIQUE (organization, ip))
            """,
            "CREATE INDEX registry_nodes_token ON registry_nodes (token_sha256) WHERE token_sha256 IS NOT NULL",
            """
            CREATE TABLE registry_node_heard (
                node_id text PRIMARY KEY,
                last_seen timestamptz NOT NULL,
                latency_ms double precision)
            """,
            """
            CREATE TABLE registry_signatures (
                fingerprint bytea PRIMARY KEY,
                expires_at timestamptz NOT NULL)
            """,
            "CREATE INDEX registry_signatures_expiry ON registry_signatures (expires_at)",
            """
            CREATE TABLE catalog_buckets (
                id text PRIMARY KEY,
                organization text NOT NULL,
                name text NOT NULL,
                deleted boolean NOT NULL,
                record jsonb NOT NULL)
            """,
            "CREATE UNIQUE INDEX catalog_buckets_live_name ON catalog_buckets (organization, name) WHERE NOT deleted",
            """
            CREATE TABLE catalog_repositories (
                id text PRIMARY KEY,
                organization text NOT NULL,
                name text NOT NULL,
                deleted boolean NOT NULL,
                record jsonb NOT NULL)
            """,
            "CREATE UNIQUE INDEX catalog_repositories_live_name ON catalog_repositories (organization, name) WHERE NOT deleted",
            """
            CREATE TABLE catalog_repo_keys (
                id text PRIMARY KEY,
                repo_id text NOT NULL,
                organization text NOT NULL,
                access_key_id text NOT NULL,
                deleted boolean NOT NULL,
                record jsonb NOT NULL,
                CONSTRAINT catalog_repo_keys_access_key_id UNIQUE (access_key_id))
            """,
            """
            CREATE TABLE flashback_change_version (
                cache text PRIMARY KEY,
                version bigint NOT NULL)
            """,
            "INSERT INTO flashback_change_version (cache, version) VALUES ('registry', 0), ('catalog', 0)",
            """
            CREATE FUNCTION flashback_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE flashback_change_version SET version = version + 1 WHERE cache = TG_ARGV[0];
                PERFORM pg_notify('\(changeChannel)', TG_TABLE_NAME || ':' || CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END);
                RETURN NULL;
            END $$
            """,
        ] + ["registry_keys", "registry_nodes", "catalog_buckets", "catalog_repositories", "catalog_repo_keys"].map { table in
            "CREATE TRIGGER \(table)_notify AFTER INSERT OR UPDATE OR DELETE ON \(table) FOR EACH ROW EXECUTE FUNCTION flashback_notify_change('\(table.hasPrefix("catalog_") ? "catalog" : "registry")')"
        }),
    ]

    /// The newest version this build knows.
    static var latestVersion: Int { migrations.last?.version ?? 0 }
}

/// The database holds a schema newer than this collector knows.
public struct SchemaTooNewError: Error, CustomStringConvertible {
    public let found: Int
    public let known: Int
    public var description: String {
        "the control-plane database has schema version \(found) but this collector knows versions up to \(known): upgrade the collector, or point --registry-url at another database"
    }
}

extension ControlPlaneDatabase {
    /// Brings the schema to ``Schema/latestVersion`` under an advisory lock, so collectors
    /// starting together apply each migration once. Refuses a schema newer than this build.
    /// - Returns: the versions applied now (empty when the schema was current).
    @discardableResult
    public func migrate() async throws -> [Int] {
        let logger = logger
        // Another collector may hold the lock while it migrates: a longer deadline than one write.
        return try await perform("migrate the schema", timeout: .seconds(60)) { client in
            try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(Schema.migrationLock))", logger: logger)
                do {
                    let applied = try await Self.applyMigrations(connection, logger: logger)
                    try await connection.query("SELECT pg_advisory_unlock(\(Schema.migrationLock))", logger: logger)
                    return applied
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(Schema.migrationLock))", logger: logger)
                    throw error
                }
            }
        }
    }

    private static func applyMigrations(_ connection: PostgresConnection, logger: Logger) async throws -> [Int] {
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS flashback_schema_migrations (
                version integer PRIMARY KEY,
                summary text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger)
        var current = 0
        for try await version in try await connection.query("SELECT coalesce(max(version), 0)::int8 FROM flashback_schema_migrations", logger: logger).decode(Int.self) {
            current = version
        }
        guard current <= Schema.latestVersion else { throw SchemaTooNewError(found: current, known: Schema.latestVersion) }
        var applied: [Int] = []
        for migration in Schema.migrations where migration.version > current {
            try await connection.withTransaction(logger: logger) { connection in
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO flashback_schema_migrations (version, summary) VALUES (\(migration.version), \(migration.summary))", logger: logger)
            }
            logger.notice("control-plane schema migrated", metadata: ["version": "\(migration.version)", "summary": "\(migration.summary)"])
            applied.append(migration.version)
        }
        return applied
    }
}

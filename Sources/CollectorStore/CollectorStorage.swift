import CollectorModel
import Foundation
import Logging
import RocksDB

/// The collector's embedded RocksDB: opens it in `DATA_DIR/rocksdb` with every column family the
/// collector uses, checks the on-disk format version, and tracks clean and unclean shutdowns.
///
/// Lifecycle: ``open(dataDirectory:options:logger:)`` marks the database "running" with a synced
/// write; ``close()`` marks it "clean" (synced) and closes RocksDB. Finding "running" at open
/// means the previous process died without closing (crash, `kill -9`, power loss).
///
/// Thread-safety: `Sendable`; share one instance across all services.
public final class CollectorStorage: Sendable {
    /// The highest on-disk format this binary reads and writes (docs/format.md).
    /// Format 3 keeps sample blocks day-major in `blocks`; a format 2 database is upgraded at
    /// open (the time-series store moves its blocks). Format 4 gives every day record the running
    /// totals of its series (record version 3); the store adds them to older records at open, and
    /// a binary that knows only format 3 refuses the directory instead of skipping the records.
    public static let formatVersion: UInt32 = 4
    /// The oldest format this binary opens; format 1 was a pre-release layout with per-minute
    /// sample records and is not migrated.
    public static let oldestReadableFormatVersion: UInt32 = 2

    /// Column families, by role. See docs/format.md.
    public enum Family: String, CaseIterable, Sendable {
        /// Format version, lifecycle state and other bookkeeping.
        case meta
        /// Control-plane entities: organizations, keys, nodes, buckets, repositories.
        case registry
    }

    /// What was found at open about the previous run.
    public struct StartupReport: Sendable, Equatable {
        /// The previous process did not close the database cleanly.
        public var previousShutdownWasUnclean: Bool
        /// How many unclean shutdowns this data directory has seen in total.
        public var uncleanShutdownCount: UInt64
        /// The database was created by this open.
        public var createdNow: Bool
    }

    /// The RocksDB database.
    public let database: Database
    /// The directory holding `rocksdb/`, `master.key` and other state.
    public let dataDirectory: String
    /// What the open found about the previous run.
    public let startup: StartupReport
    private let families: [Family: ColumnFamily]
    private let logger: Logger

    enum MetaKey {
        static let formatVersion = Array("format_version".utf8)
        static let lifecycleState = Array("lifecycle/state".utf8)
        static let uncleanShutdowns = Array("lifecycle/unclean_shutdowns".utf8)
        static let running = Array("running".utf8)
        static let clean = Array("clean".utf8)
    }

    /// Opens (creating when absent) the store under `dataDirectory`.
    /// - Throws: ``StorageError`` with a message fit for one line on stderr.
    public static func open(
        dataDirectory: String,
        options: DatabaseOptions = DatabaseOptions(),
        extraFamilies: [ColumnFamilyDescriptor] = [],
        logger: Logger
    ) throws -> CollectorStorage {
        let path = (dataDirectory as NSString).appendingPathComponent("rocksdb")
        let database: Database
        do {
            database = try Database.open(
                path: path, options: options,
                columnFamilies: Family.allCases.map { ColumnFamilyDescriptor(name: $0.rawValue) } + extraFamilies)
        } catch let error as RocksDBError where error.kind == .locked {
            throw StorageError(description: "data directory \(dataDirectory) is in use by another flashback-collector process (RocksDB lock \(path)/LOCK is held)",
                               isLocked: true)
        } catch {
            throw StorageError(description: "cannot open the database in \(path): \(error)")
        }
        do {
            return try CollectorStorage(database: database, dataDirectory: dataDirectory, logger: logger)
        } catch {
            database.close()
            throw error
        }
    }

    /// Writes a consistent copy of the database into `directory` (which must not exist; on the
    /// same filesystem its SST files are hard links), while reads and writes go on.
    public func checkpoint(at directory: String) throws {
        try database.createCheckpoint(at: directory)
    }

    /// RocksDB's identity of the database (its `IDENTITY` file), stable for its lifetime.
    public var identity: String {
        let path = (database.path as NSString).appendingPathComponent("IDENTITY")
        return ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private init(database: Database, dataDirectory: String, logger: Logger) throws {
        var families: [Family: ColumnFamily] = [:]
        for family in Family.allCases { families[family] = try database.columnFamily(family.rawValue) }
        let meta = try database.columnFamily(Family.meta.rawValue)

        let createdNow: Bool
        if let stored = try database.get(MetaKey.formatVersion, in: meta) {
            guard stored.count == 4 else {
                throw StorageError(description: "the database in \(database.path) has an unreadable format version; it was not written by flashback-collector")
            }
            let version = stored.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard version <= CollectorStorage.formatVersion else {
                throw StorageError(description: "the database in \(database.path) has format version \(version); this binary supports up to \(CollectorStorage.formatVersion): upgrade flashback-collector")
            }
            guard version >= CollectorStorage.oldestReadableFormatVersion else {
                throw StorageError(description: "the database in \(database.path) has format version \(version), a pre-release layout this binary does not migrate: move it away and start with an empty data directory")
            }
            if version < CollectorStorage.formatVersion {
                try database.put(MetaKey.formatVersion, CollectorStorage.formatVersion.bigEndianBytes, in: meta, sync: true)
                logger.info("upgraded the data directory's format", metadata: ["from": "\(version)", "to": "\(CollectorStorage.formatVersion)"])
            }
            createdNow = false
        } else {
            try database.put(MetaKey.formatVersion, CollectorStorage.formatVersion.bigEndianBytes, in: meta, sync: true)
            createdNow = true
        }

        let state = try database.get(MetaKey.lifecycleState, in: meta)
        let unclean = state == MetaKey.running
        var count = try database.get(MetaKey.uncleanShutdowns, in: meta).flatMap(UInt64.init(bigEndianBytes:)) ?? 0
        let batch = WriteBatch()
        if unclean {
            count += 1
            batch.put(MetaKey.uncleanShutdowns, count.bigEndianBytes, in: meta)
        }
        batch.put(MetaKey.lifecycleState, MetaKey.running, in: meta)
        try database.write(batch, sync: true)

        self.database = database
        self.dataDirectory = dataDirectory
        self.families = families
        self.logger = logger
        self.startup = StartupReport(previousShutdownWasUnclean: unclean, uncleanShutdownCount: count, createdNow: createdNow)
    }

    /// The column family for `family`.
    public func columnFamily(_ family: Family) -> ColumnFamily {
        guard let handle = families[family] else { preconditionFailure("column family \(family) is opened with the store") }
        return handle
    }

    /// Marks the shutdown clean (synced), flushes and closes RocksDB. Calling it again does nothing.
    public func close() {
        guard !database.isClosed else { return }
        do {
            try database.put(MetaKey.lifecycleState, MetaKey.clean, in: columnFamily(.meta), sync: true)
        } catch {
            logger.error("could not record the clean shutdown", metadata: ["error": "\(error)"])
        }
        database.close()
    }
}

/// A failure to open the store, phrased for an operator.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// Another process holds the data directory (its RocksDB lock).
    public var isLocked = false
}

extension FixedWidthInteger {
    /// The integer's big-endian bytes.
    public var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: self.bigEndian) { Array($0) }
    }

    /// Reads a big-endian integer of exactly this width, or `nil` for another length.
    public init?(bigEndianBytes bytes: some Collection<UInt8>) {
        guard bytes.count == MemoryLayout<Self>.size else { return nil }
        self = bytes.reduce(Self.zero) { $0 << 8 | Self($1) }
    }
}

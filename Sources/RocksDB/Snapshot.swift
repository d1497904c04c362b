import CRocksDB
import Foundation

/// A consistent read view of a ``Database`` at the moment it was taken.
///
/// Holding a snapshot keeps the database's handles alive (``Database/close()`` waits for it) and
/// keeps RocksDB from dropping the versions it sees, so release it promptly (drop the reference).
/// Safe to share across tasks: RocksDB snapshots are immutable.
public final class Snapshot: @unchecked Sendable {
    let database: Database
    let handle: OpaquePointer

    init(database: Database) throws {
        guard database.gate.enter() else { throw RocksDBError.closed("snapshot") }
        guard let handle = rocksdb_create_snapshot(database.handle) else {
            database.gate.leave()
            throw RocksDBError(kind: .other, operation: "snapshot", message: "rocksdb_create_snapshot returned NULL")
        }
        self.database = database
        self.handle = handle
    }

    deinit {
        rocksdb_release_snapshot(database.handle, handle)
        database.gate.leave()
    }
}

extension Database {
    /// Takes a snapshot for consistent reads across several `get`s and iterators.
    public func snapshot() throws -> Snapshot {
        try Snapshot(database: self)
    }
}

import CRocksDB
import Foundation

/// A set of writes applied atomically by ``Database/write(_:sync:)``.
///
/// Single owner: a batch is built by one task and handed to `write`; it is not `Sendable`.
/// The batch copies keys and values as they are added, so callers may reuse their buffers.
public final class WriteBatch {
    let handle: OpaquePointer

    /// The defaults, as documented on each property.
    public init() {
        guard let handle = rocksdb_writebatch_create() else { preconditionFailure("rocksdb_writebatch_create returned NULL") }
        self.handle = handle
    }

    deinit { rocksdb_writebatch_destroy(handle) }

    /// Adds a put of `value` under `key`.
    public func put(_ key: some ContiguousBytes, _ value: some ContiguousBytes, in family: ColumnFamily) {
        key.withUnsafeBytes { k in
            value.withUnsafeBytes { v in
                rocksdb_writebatch_put_cf(handle, family.handle, k.cString, k.count, v.cString, v.count)
            }
        }
    }

    /// Adds a merge operand for `key`.
    public func merge(_ key: some ContiguousBytes, _ operand: some ContiguousBytes, in family: ColumnFamily) {
        key.withUnsafeBytes { k in
            operand.withUnsafeBytes { v in
                rocksdb_writebatch_merge_cf(handle, family.handle, k.cString, k.count, v.cString, v.count)
            }
        }
    }

    /// Adds a delete of `key`.
    public func delete(_ key: some ContiguousBytes, in family: ColumnFamily) {
        key.withUnsafeBytes { k in rocksdb_writebatch_delete_cf(handle, family.handle, k.cString, k.count) }
    }

    /// Adds a range tombstone for `[start, end)`.
    public func deleteRange(from start: some ContiguousBytes, to end: some ContiguousBytes, in family: ColumnFamily) {
        start.withUnsafeBytes { s in
            end.withUnsafeBytes { e in
                rocksdb_writebatch_delete_range_cf(handle, family.handle, s.cString, s.count, e.cString, e.count)
            }
        }
    }

    /// Number of operations in the batch.
    public var count: Int { Int(rocksdb_writebatch_count(handle)) }

    /// Size of the batch's serialized form in bytes (what goes into the WAL).
    public var byteCount: Int {
        var size = 0
        _ = rocksdb_writebatch_data(handle, &size)
        return size
    }

    /// Removes every operation so the batch can be reused.
    public func clear() { rocksdb_writebatch_clear(handle) }
}

import CRocksDB

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A compaction filter written in Swift: decides, while RocksDB compacts, which entries to drop
/// (time-based retention).
///
/// RocksDB calls it from several background threads at once; implementations must be stateless
/// or synchronised. The buffers are valid only during the call. Entries are dropped only when a
/// compaction reaches them; ``Database/compact(_:from:to:)`` forces that.
public protocol CompactionFilter: Sendable {
    /// A stable name, stored in the OPTIONS file.
    var name: String { get }

    /// Whether to drop the entry.
    func shouldRemove(level: Int, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool
}

/// Owns a Swift compaction filter for the life of its C counterpart. Unlike merge operators,
/// `rocksdb_options_set_compaction_filter` does not take ownership: ``NativeOptions`` destroys
/// the C filter after the database is closed.
final class CompactionFilterBox {
    let filter: any CompactionFilter
    let cName: UnsafeMutablePointer<CChar>

    init(_ filter: any CompactionFilter) {
        self.filter = filter
        guard let name = strdup(filter.name) else { preconditionFailure("strdup failed: out of memory") }
        cName = name
    }

    deinit { free(cName) }

    static func makeCFilter(_ filter: any CompactionFilter) -> OpaquePointer {
        let state = Unmanaged.passRetained(CompactionFilterBox(filter)).toOpaque()
        guard let handle = rocksdb_compactionfilter_create(
            state,
            { state in
                guard let state else { return }
                Unmanaged<CompactionFilterBox>.fromOpaque(state).release()
            },
            { state, level, key, keyLength, value, valueLength, _, _, changed in
                changed?.pointee = 0
                guard let state else { return 0 }
                let box = Unmanaged<CompactionFilterBox>.fromOpaque(state).takeUnretainedValue()
                let remove = box.filter.shouldRemove(
                    level: Int(level),
                    key: UnsafeRawBufferPointer(start: key, count: keyLength),
                    value: UnsafeRawBufferPointer(start: value, count: valueLength))
                return remove ? 1 : 0
            },
            { state in
                guard let state else { return nil }
                return UnsafePointer(Unmanaged<CompactionFilterBox>.fromOpaque(state).takeUnretainedValue().cName)
            }
        ) else {
            preconditionFailure("rocksdb_compactionfilter_create returned NULL")
        }
        return handle
    }
}

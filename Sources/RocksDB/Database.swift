import CRocksDB
import Foundation

/// A column family of an open ``Database``. Valid until the database is closed; every use goes
/// through the database, which refuses operations after close.
public final class ColumnFamily: @unchecked Sendable, Hashable, CustomStringConvertible {
    /// The column family's name.
    public let name: String
    let handle: OpaquePointer

    init(name: String, handle: OpaquePointer) {
        self.name = name
        self.handle = handle
    }

    public static func == (lhs: ColumnFamily, rhs: ColumnFamily) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
    public var description: String { "ColumnFamily(\(name))" }
}

/// An open RocksDB database with its column families.
///
/// Thread-safety: every method may be called from any task or thread at once (RocksDB itself is
/// thread-safe); `close()` waits for operations in flight, then frees every C handle exactly once.
/// After `close()`, operations throw ``RocksDBError/Kind/closed``.
///
/// Durability: every write goes through the write-ahead log. With `sync: false` a write survives a
/// crash of the process (the WAL is in the OS page cache); with `sync: true` it is fsynced before
/// the call returns and survives power loss.
public final class Database: @unchecked Sendable {
    /// The directory holding the database.
    public let path: String
    /// Column families by name, including `"default"` and any found on disk but not requested.
    public let columnFamilies: [String: ColumnFamily]

    let handle: OpaquePointer
    private let native: NativeOptions
    private let writeOptions: OpaquePointer
    private let syncWriteOptions: OpaquePointer
    private let readOptions: OpaquePointer
    let gate = LifetimeGate()

    /// Opens (or creates) the database at `path` with the given column families.
    ///
    /// Column families that do not exist yet are created; ones that exist on disk but are not
    /// listed are opened with default options, so that RocksDB accepts the open.
    /// - Throws: ``RocksDBError`` with kind `.locked` when another process (or another open in
    ///   this process) holds the database.
    public static func open(
        path: String,
        options: DatabaseOptions = DatabaseOptions(),
        columnFamilies: [ColumnFamilyDescriptor] = []
    ) throws -> Database {
        if options.createIfMissing {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } catch {
                throw RocksDBError(kind: .io, operation: "open", message: "cannot create directory \(path): \(error.localizedDescription)")
            }
        }
        return try Database(path: path, options: options, columnFamilies: columnFamilies)
    }

    private init(path: String, options: DatabaseOptions, columnFamilies requested: [ColumnFamilyDescriptor]) throws {
        let native = NativeOptions(options)
        var descriptors = requested
        if !descriptors.contains(where: { $0.name == "default" }) {
            descriptors.insert(ColumnFamilyDescriptor(name: "default"), at: 0)
        }
        for existing in Database.listColumnFamilies(path: path, options: native.database)
        where !descriptors.contains(where: { $0.name == existing }) {
            descriptors.append(ColumnFamilyDescriptor(name: existing))
        }
        let cfOptions: [OpaquePointer?] = descriptors.map { native.addColumnFamily($0) }
        let names = descriptors.map { strdup($0.name) }
        defer { names.forEach { free($0) } }
        var handles = [OpaquePointer?](repeating: nil, count: descriptors.count)

        let db: OpaquePointer? = try names.map { UnsafePointer($0) }.withUnsafeBufferPointer { namePointers in
            try cfOptions.withUnsafeBufferPointer { optionPointers in
                try handles.withUnsafeMutableBufferPointer { handlePointers in
                    try withErrorPointer("open \(path)") { error in
                        rocksdb_open_column_families(
                            native.database, path, Int32(descriptors.count),
                            namePointers.baseAddress, optionPointers.baseAddress,
                            handlePointers.baseAddress, error)
                    }
                }
            }
        }
        guard let db else {
            throw RocksDBError(kind: .other, operation: "open \(path)", message: "rocksdb_open_column_families returned NULL")
        }
        var families: [String: ColumnFamily] = [:]
        for (descriptor, handle) in zip(descriptors, handles) {
            guard let handle else { preconditionFailure("RocksDB opened without a handle for column family \(descriptor.name)") }
            families[descriptor.name] = ColumnFamily(name: descriptor.name, handle: handle)
        }
        guard let writeOptions = rocksdb_writeoptions_create(),
              let syncWriteOptions = rocksdb_writeoptions_create(),
              let readOptions = rocksdb_readoptions_create() else {
            preconditionFailure("rocksdb option allocation returned NULL: out of memory")
        }
        rocksdb_writeoptions_set_sync(syncWriteOptions, 1)

        self.path = path
        self.handle = db
        self.native = native
        self.columnFamilies = families
        self.writeOptions = writeOptions
        self.syncWriteOptions = syncWriteOptions
        self.readOptions = readOptions
    }

    private static func listColumnFamilies(path: String, options: OpaquePointer) -> [String] {
        var count = 0
        // A database that does not exist yet has no column families; that error is expected.
        guard let list = try? withErrorPointer("list column families", { error in
            rocksdb_list_column_families(options, path, &count, error)
        }) else { return [] }
        defer { rocksdb_list_column_families_destroy(list, count) }
        return (0..<count).compactMap { list[$0].map { String(cString: $0) } }
    }

    deinit {
        close()
    }

    /// Waits for operations in flight, then closes the database and frees every handle.
    /// Calling it again does nothing.
    public func close() {
        guard gate.closeAndWait() else { return }
        for family in columnFamilies.values { rocksdb_column_family_handle_destroy(family.handle) }
        rocksdb_close(handle)
        rocksdb_writeoptions_destroy(writeOptions)
        rocksdb_writeoptions_destroy(syncWriteOptions)
        rocksdb_readoptions_destroy(readOptions)
        // `native` (options, merge operators, cache) is released with this object.
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { gate.isClosed }

    /// Runs `body` while holding a use of the handles.
    @inline(__always)
    func using<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        guard gate.enter() else { throw RocksDBError.closed(operation) }
        defer { gate.leave() }
        return try body()
    }

    /// The column family called `name`.
    /// - Throws: `.invalidArgument` when it was neither requested at open nor found on disk.
    public func columnFamily(_ name: String) throws -> ColumnFamily {
        guard let family = columnFamilies[name] else {
            throw RocksDBError(kind: .invalidArgument, operation: "column family", message: "no column family named \(name)")
        }
        return family
    }

    /// The `"default"` column family.
    public var defaultColumnFamily: ColumnFamily {
        guard let family = columnFamilies["default"] else { preconditionFailure("the default column family is always opened") }
        return family
    }

    // MARK: Point operations

    /// Stores `value` under `key` (WAL on; fsync when `sync`).
    public func put(_ key: some ContiguousBytes, _ value: some ContiguousBytes, in family: ColumnFamily, sync: Bool = false) throws {
        try using("put") {
            try key.withUnsafeBytes { k in
                try value.withUnsafeBytes { v in
                    try withErrorPointer("put") { error in
                        rocksdb_put_cf(handle, sync ? syncWriteOptions : writeOptions, family.handle,
                                       k.cString, k.count, v.cString, v.count, error)
                    }
                }
            }
        }
    }

    /// Adds a merge operand for `key`; the column family must have a merge operator.
    public func merge(_ key: some ContiguousBytes, _ operand: some ContiguousBytes, in family: ColumnFamily, sync: Bool = false) throws {
        try using("merge") {
            try key.withUnsafeBytes { k in
                try operand.withUnsafeBytes { v in
                    try withErrorPointer("merge") { error in
                        rocksdb_merge_cf(handle, sync ? syncWriteOptions : writeOptions, family.handle,
                                         k.cString, k.count, v.cString, v.count, error)
                    }
                }
            }
        }
    }

    /// Deletes `key` (a tombstone through the WAL).
    public func delete(_ key: some ContiguousBytes, in family: ColumnFamily, sync: Bool = false) throws {
        try using("delete") {
            try key.withUnsafeBytes { k in
                try withErrorPointer("delete") { error in
                    rocksdb_delete_cf(handle, sync ? syncWriteOptions : writeOptions, family.handle, k.cString, k.count, error)
                }
            }
        }
    }

    /// Deletes every key in `[start, end)` with one range tombstone.
    public func deleteRange(from start: some ContiguousBytes, to end: some ContiguousBytes, in family: ColumnFamily, sync: Bool = false) throws {
        try using("delete range") {
            try start.withUnsafeBytes { s in
                try end.withUnsafeBytes { e in
                    try withErrorPointer("delete range") { error in
                        rocksdb_delete_range_cf(handle, sync ? syncWriteOptions : writeOptions, family.handle,
                                                s.cString, s.count, e.cString, e.count, error)
                    }
                }
            }
        }
    }

    /// Reads the value of `key` (merges applied), or `nil` when absent.
    /// - Parameter snapshot: read as of this snapshot instead of the latest state.
    public func get(_ key: some ContiguousBytes, in family: ColumnFamily, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        try using("get") {
            try withReadOptions(snapshot: snapshot) { options in
                try key.withUnsafeBytes { k in
                    var length = 0
                    let value = try withErrorPointer("get") { error in
                        rocksdb_get_cf(handle, options, family.handle, k.cString, k.count, &length, error)
                    }
                    guard let value else { return nil }
                    defer { rocksdb_free(value) }
                    return [UInt8](UnsafeRawBufferPointer(start: value, count: length))
                }
            }
        }
    }

    /// Applies every operation of `batch` atomically (WAL on; fsync when `sync`).
    public func write(_ batch: WriteBatch, sync: Bool = false) throws {
        try using("write") {
            try withErrorPointer("write") { error in
                rocksdb_write(handle, sync ? syncWriteOptions : writeOptions, batch.handle, error)
            }
        }
    }

    func withReadOptions<T>(snapshot: Snapshot?, _ body: (OpaquePointer) throws -> T) throws -> T {
        guard let snapshot else { return try body(readOptions) }
        guard let options = rocksdb_readoptions_create() else { preconditionFailure("rocksdb_readoptions_create returned NULL") }
        defer { rocksdb_readoptions_destroy(options) }
        rocksdb_readoptions_set_snapshot(options, snapshot.handle)
        return try body(options)
    }

    // MARK: Maintenance

    /// Compacts the keys in `[start, end)` of `family` (the whole column family when both are
    /// `nil`), running merge operators and dropping deleted data. Blocks until done.
    public func compact(_ family: ColumnFamily, from start: [UInt8]? = nil, to end: [UInt8]? = nil) throws {
        try using("compact") {
            withOptionalBytes(start) { s, sCount in
                withOptionalBytes(end) { e, eCount in
                    rocksdb_compact_range_cf(handle, family.handle, s, sCount, e, eCount)
                }
            }
        }
    }

    /// Flushes the memtables of `family` (all column families when `nil`) to SST files.
    public func flush(_ family: ColumnFamily? = nil) throws {
        try using("flush") {
            guard let options = rocksdb_flushoptions_create() else { preconditionFailure("rocksdb_flushoptions_create returned NULL") }
            defer { rocksdb_flushoptions_destroy(options) }
            rocksdb_flushoptions_set_wait(options, 1)
            let families = family.map { [$0] } ?? Array(columnFamilies.values)
            for family in families {
                try withErrorPointer("flush \(family.name)") { error in
                    rocksdb_flush_cf(handle, options, family.handle, error)
                }
            }
        }
    }

    /// Writes the WAL buffer to its file and, when `sync`, fsyncs it.
    public func flushWAL(sync: Bool) throws {
        try using("flush WAL") {
            try withErrorPointer("flush WAL") { error in rocksdb_flush_wal(handle, sync ? 1 : 0, error) }
        }
    }

    /// Writes a consistent, openable copy of the database into `directory` (which must not exist),
    /// hard-linking SST files where possible. Used for snapshots and backups.
    public func createCheckpoint(at directory: String) throws {
        try using("checkpoint") {
            let checkpoint = try withErrorPointer("checkpoint") { error in rocksdb_checkpoint_object_create(handle, error) }
            guard let checkpoint else {
                throw RocksDBError(kind: .other, operation: "checkpoint", message: "rocksdb_checkpoint_object_create returned NULL")
            }
            defer { rocksdb_checkpoint_object_destroy(checkpoint) }
            // 0: always flush the memtables so that the checkpoint does not depend on WAL replay.
            try withErrorPointer("checkpoint \(directory)") { error in rocksdb_checkpoint_create(checkpoint, directory, 0, error) }
        }
    }

    // MARK: Introspection

    /// A RocksDB property as text (e.g. `"rocksdb.stats"`), or `nil` when unknown.
    public func property(_ name: String, of family: ColumnFamily? = nil) -> String? {
        try? using("property") {
            if let family {
                return takeCString(rocksdb_property_value_cf(handle, family.handle, name))
            }
            return takeCString(rocksdb_property_value(handle, name))
        }
    }

    /// A numeric RocksDB property (e.g. `"rocksdb.estimate-num-keys"`), or `nil` when unknown.
    public func integerProperty(_ name: String, of family: ColumnFamily? = nil) -> UInt64? {
        (try? using("property") { () -> UInt64? in
            var value: UInt64 = 0
            let status = family.map { rocksdb_property_int_cf(handle, $0.handle, name, &value) }
                ?? rocksdb_property_int(handle, name, &value)
            return status == 0 ? value : nil
        }) ?? nil
    }

    /// RocksDB's statistics dump (tickers and histograms), or `nil` when statistics are disabled.
    public func statistics() -> String? {
        try? using("statistics") { takeCString(rocksdb_options_statistics_get_string(native.database)) }
    }

    /// Parses the ticker lines of ``statistics()`` (`rocksdb.bytes.written COUNT : 42`).
    public func statisticsTickers() -> [String: UInt64] {
        guard let text = statistics() else { return [:] }
        var tickers: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 4, parts[1] == "COUNT", parts[2] == ":", let value = UInt64(parts[3]) {
                tickers[String(parts[0])] = value
            }
        }
        return tickers
    }
}

extension UnsafeRawBufferPointer {
    /// The buffer's start as the `const char*` RocksDB expects; never NULL, also for empty keys.
    @inline(__always)
    var cString: UnsafePointer<CChar> {
        guard let base = baseAddress else { return emptyKeyPointer }
        return base.assumingMemoryBound(to: CChar.self)
    }
}

/// One NUL byte that empty buffers point at: RocksDB dereferences nothing for length 0, but some
/// of its C entry points treat a NULL key pointer as "no bound" rather than "empty key".
nonisolated(unsafe) private let emptyKeyPointer: UnsafePointer<CChar> = {
    let storage = UnsafeMutablePointer<CChar>.allocate(capacity: 1)
    storage.initialize(to: 0)
    return UnsafePointer(storage)
}()

@inline(__always)
func withOptionalBytes<T>(_ bytes: [UInt8]?, _ body: (UnsafePointer<CChar>?, Int) -> T) -> T {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { body($0.cString, $0.count) }
}

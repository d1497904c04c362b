import CRocksDB
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A cursor over the keys of one column family, in byte order, optionally bounded to
/// `[lowerBound, upperBound)` and pinned to a ``Snapshot``.
///
/// Single owner and not `Sendable`. While it exists, ``Database/close()`` waits for it.
/// `key` and `value` copy; `withKey`/`withValue` lend the bytes until the next move.
public final class Iterator {
    private let database: Database
    private let handle: OpaquePointer
    private let readOptions: OpaquePointer
    private let lower: UnsafeMutableRawBufferPointer?
    private let upper: UnsafeMutableRawBufferPointer?
    private let snapshot: Snapshot?

    init(database: Database, family: ColumnFamily, lowerBound: [UInt8]?, upperBound: [UInt8]?, snapshot: Snapshot?) throws {
        guard database.gate.enter() else { throw RocksDBError.closed("iterator") }
        guard let readOptions = rocksdb_readoptions_create() else { preconditionFailure("rocksdb_readoptions_create returned NULL") }
        // RocksDB keeps pointers to the bounds, so they live in memory owned by the iterator.
        func copy(_ bytes: [UInt8]?) -> UnsafeMutableRawBufferPointer? {
            guard let bytes else { return nil }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes.count])
        }
        lower = copy(lowerBound)
        upper = copy(upperBound)
        if let lower {
            rocksdb_readoptions_set_iterate_lower_bound(readOptions, UnsafeRawBufferPointer(lower).cString, lower.count)
        }
        if let upper {
            rocksdb_readoptions_set_iterate_upper_bound(readOptions, UnsafeRawBufferPointer(upper).cString, upper.count)
        }
        if let snapshot { rocksdb_readoptions_set_snapshot(readOptions, snapshot.handle) }
        guard let handle = rocksdb_create_iterator_cf(database.handle, readOptions, family.handle) else {
            preconditionFailure("rocksdb_create_iterator_cf returned NULL")
        }
        self.database = database
        self.handle = handle
        self.readOptions = readOptions
        self.snapshot = snapshot
    }

    deinit {
        rocksdb_iter_destroy(handle)
        rocksdb_readoptions_destroy(readOptions)
        if let lower { UnsafeMutableRawBufferPointer(start: lower.baseAddress, count: max(lower.count, 1)).deallocate() }
        if let upper { UnsafeMutableRawBufferPointer(start: upper.baseAddress, count: max(upper.count, 1)).deallocate() }
        database.gate.leave()
    }

    /// Whether the cursor is on an entry. When it is not, call ``checkError()``.
    public var isValid: Bool { rocksdb_iter_valid(handle) != 0 }

    /// Moves to the first entry at or after the lower bound.
    public func seekToFirst() { rocksdb_iter_seek_to_first(handle) }
    /// Moves to the last entry before the upper bound.
    public func seekToLast() { rocksdb_iter_seek_to_last(handle) }
    /// Moves to the first entry whose key is `>= target`.
    public func seek(to target: some ContiguousBytes) {
        target.withUnsafeBytes { rocksdb_iter_seek(handle, $0.cString, $0.count) }
    }
    /// Moves to the last entry whose key is `<= target`.
    public func seek(forPrevious target: some ContiguousBytes) {
        target.withUnsafeBytes { rocksdb_iter_seek_for_prev(handle, $0.cString, $0.count) }
    }
    /// Moves to the next entry. Precondition: ``isValid``.
    public func next() { rocksdb_iter_next(handle) }
    /// Moves to the previous entry. Precondition: ``isValid``.
    public func previous() { rocksdb_iter_prev(handle) }

    /// Lends the current key. Precondition: ``isValid``.
    public func withKey<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        var length = 0
        let pointer = rocksdb_iter_key(handle, &length)
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Lends the current value. Precondition: ``isValid``.
    public func withValue<T>(_ body: (UnsafeRawBufferPointer) throws -> T) rethrows -> T {
        var length = 0
        let pointer = rocksdb_iter_value(handle, &length)
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// A copy of the current key. Precondition: ``isValid``.
    public var key: [UInt8] { withKey { [UInt8]($0) } }
    /// A copy of the current value. Precondition: ``isValid``.
    public var value: [UInt8] { withValue { [UInt8]($0) } }

    /// Throws the error that stopped iteration early, if any (I/O or corruption).
    public func checkError() throws {
        try withErrorPointer("iterate") { error in rocksdb_iter_get_error(handle, error) }
    }
}

extension Database {
    /// Creates a cursor over `family`, bounded to `[lowerBound, upperBound)` when given.
    public func makeIterator(
        _ family: ColumnFamily,
        lowerBound: [UInt8]? = nil,
        upperBound: [UInt8]? = nil,
        snapshot: Snapshot? = nil
    ) throws -> Iterator {
        try Iterator(database: self, family: family, lowerBound: lowerBound, upperBound: upperBound, snapshot: snapshot)
    }

    /// Visits every entry of `[lowerBound, upperBound)` in key order until `body` returns `false`.
    /// - Throws: what `body` throws, or the iterator's I/O or corruption error.
    public func scan(
        _ family: ColumnFamily,
        lowerBound: [UInt8]? = nil,
        upperBound: [UInt8]? = nil,
        snapshot: Snapshot? = nil,
        _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        let iterator = try makeIterator(family, lowerBound: lowerBound, upperBound: upperBound, snapshot: snapshot)
        iterator.seekToFirst()
        while iterator.isValid {
            let goOn = try iterator.withKey { key in try iterator.withValue { value in try body(key, value) } }
            if !goOn { break }
            iterator.next()
        }
        try iterator.checkError()
    }
}

extension Array where Element == UInt8 {
    /// The smallest key greater than every key starting with this prefix, the exclusive upper
    /// bound of a prefix scan (`[0xFF]` for a prefix of only 0xFF bytes).
    public var prefixUpperBound: [UInt8] {
        var bound = self
        while let last = bound.last {
            if last < 0xFF {
                bound[bound.count - 1] = last + 1
                return bound
            }
            bound.removeLast()
        }
        return [0xFF]
    }
}

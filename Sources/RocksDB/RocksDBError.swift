import CRocksDB

/// An error reported by RocksDB, or by this wrapper when a handle is used after ``Database/close()``.
///
/// Every C error out-parameter (`char** errptr`) crosses into Swift through ``withErrorPointer(_:_:)``,
/// the one place that reads, frees and classifies RocksDB's error strings.
public struct RocksDBError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is, parsed from RocksDB's status prefix.
    public enum Kind: String, Sendable, Equatable {
        /// The database's `LOCK` file is held by another process, or by another open in this one.
        case locked
        /// On-disk data failed a checksum or could not be decoded (including failed merges).
        case corruption
        /// A file-system error other than the lock.
        case io
        /// An option or argument RocksDB refused.
        case invalidArgument
        /// The operation is not supported by this build or configuration.
        case notSupported
        /// The database was already closed by this process.
        case closed
        /// Anything else RocksDB reported.
        case other
    }

    /// The classified kind of the failure.
    public let kind: Kind
    /// What the wrapper was doing, e.g. `"open"` or `"write"`.
    public let operation: String
    /// RocksDB's own message, unchanged.
    public let message: String

    /// A `RocksDBError` from its parts.
    public init(kind: Kind, operation: String, message: String) {
        self.kind = kind
        self.operation = operation
        self.message = message
    }

    public var description: String {
        switch kind {
        case .locked:
            return "RocksDB \(operation): the database is locked by another process (\(message))"
        case .closed:
            return "RocksDB \(operation): the database is closed"
        default:
            return "RocksDB \(operation): \(message)"
        }
    }

    static func closed(_ operation: String) -> RocksDBError {
        RocksDBError(kind: .closed, operation: operation, message: "database is closed")
    }

    /// Classifies a RocksDB status string (`"IO error: …"`, `"Corruption: …"`, …).
    static func classify(_ message: String) -> Kind {
        // RocksDB reports a held LOCK file as an IO error; the text differs between a lock held by
        // another process (fcntl: "Resource temporarily unavailable") and one held by this process.
        if message.contains("lock file") || message.contains("LOCK") || message.contains("lock hold") {
            if message.hasPrefix("IO error") { return .locked }
        }
        if message.hasPrefix("Corruption") { return .corruption }
        if message.hasPrefix("IO error") { return .io }
        if message.hasPrefix("Invalid argument") { return .invalidArgument }
        if message.hasPrefix("Not implemented") || message.hasPrefix("Operation not supported") {
            return .notSupported
        }
        return .other
    }
}

/// Calls `body` with a fresh `char** errptr`; if RocksDB set it, frees the string and throws.
///
/// This is the only function in the package that reads a RocksDB error out-parameter.
@inline(__always)
func withErrorPointer<T>(
    _ operation: String,
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> T
) throws -> T {
    var error: UnsafeMutablePointer<CChar>? = nil
    let result = try withUnsafeMutablePointer(to: &error) { try body($0) }
    if let error {
        let message = String(cString: error)
        rocksdb_free(error)
        throw RocksDBError(kind: RocksDBError.classify(message), operation: operation, message: message)
    }
    return result
}

/// Copies a malloc'ed C string owned by RocksDB into Swift and frees it.
func takeCString(_ pointer: UnsafeMutablePointer<CChar>?) -> String? {
    guard let pointer else { return nil }
    defer { rocksdb_free(pointer) }
    return String(cString: pointer)
}

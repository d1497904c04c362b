import CollectorStore
import Foundation
import Logging

/// A database a store-contract suite runs against: it opens a store over the same durable data
/// again and again (each open sees what earlier ones wrote), as a restart or another collector
/// replica does. The contract suites take a list of them, so that a new backend (PostgreSQL for
/// cluster mode) joins by being added to that list.
public protocol StoreBackend<Store>: Sendable {
    associatedtype Store
    /// Shown in the failures of the suite.
    var name: String { get }
    /// A store over the backend's data (closing what an earlier open left open).
    func open() throws -> Store
    /// Releases what the last open holds.
    func close()
}

/// The embedded backend: a RocksDB data directory of its own, closed and reopened between opens.
public final class RocksDBStoreBackend<Store>: StoreBackend, @unchecked Sendable {
    public let name = "rocksdb"
    private let directory: TemporaryDirectory
    private let make: @Sendable (CollectorStorage) -> Store
    private var storage: CollectorStorage?

    /// A backend whose stores `make` builds over the opened storage.
    public init(prefix: String, make: @escaping @Sendable (CollectorStorage) -> Store) {
        directory = TemporaryDirectory(prefix: prefix)
        self.make = make
    }

    public func open() throws -> Store {
        close()
        let opened = try CollectorStorage.open(dataDirectory: directory.appending("data"), logger: Logger(label: "test"))
        storage = opened
        return make(opened)
    }

    public func close() {
        storage?.close()
        storage = nil
    }
}

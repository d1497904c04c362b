import CollectorStore
import CollectorTesting
import Logging
import RocksDB
import Testing

@Suite("Collector storage lifecycle")
struct CollectorStorageTests {
    let directory = TemporaryDirectory(prefix: "storage")
    let logger = Logger(label: "test")

    @Test func cleanCloseIsRecognisedAtTheNextOpen() async throws {
        let first = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        #expect(first.startup.createdNow)
        #expect(!first.startup.previousShutdownWasUnclean)
        first.close()
        let second = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        #expect(!second.startup.createdNow)
        #expect(!second.startup.previousShutdownWasUnclean)
        #expect(second.startup.uncleanShutdownCount == 0)
        second.close()
    }

    @Test func aProcessThatNeverClosedIsReportedAsUnclean() async throws {
        do {
            // Dropping the store without `close()` releases RocksDB but never records a clean
            // shutdown: exactly what a crash leaves on disk.
            let crashed = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
            try crashed.database.put(Array("x".utf8), Array("y".utf8), in: crashed.columnFamily(.registry))
            crashed.database.close()
        }
        let second = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        #expect(second.startup.previousShutdownWasUnclean)
        #expect(second.startup.uncleanShutdownCount == 1)
        #expect(try second.database.get(Array("x".utf8), in: second.columnFamily(.registry)) == Array("y".utf8))
        second.database.close()
        let third = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        #expect(third.startup.uncleanShutdownCount == 2)
        third.close()
        let fourth = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        #expect(!fourth.startup.previousShutdownWasUnclean)
        #expect(fourth.startup.uncleanShutdownCount == 2)
        fourth.close()
    }

    @Test func aNewerFormatVersionIsRefused() async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        try storage.database.put(Array("format_version".utf8), UInt32(99).bigEndianBytes, in: storage.columnFamily(.meta))
        storage.close()
        do {
            _ = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
            Issue.record("a database of format 99 was opened")
        } catch let error as StorageError {
            #expect(error.description.contains("format version 99"))
        }
    }

    @Test func aSecondOpenOfTheDataDirectoryFailsClearly() async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
        defer { storage.close() }
        do {
            _ = try CollectorStorage.open(dataDirectory: directory.path, logger: logger)
            Issue.record("the data directory was opened twice")
        } catch let error as StorageError {
            #expect(error.description.contains("in use by another flashback-collector process"))
        }
    }

    @Test func bigEndianIntegersRoundTrip() {
        for value: UInt64 in [0, 1, 255, 256, .max] {
            #expect(UInt64(bigEndianBytes: value.bigEndianBytes) == value)
        }
        #expect(UInt32(7).bigEndianBytes == [0, 0, 0, 7])
        #expect(UInt32(bigEndianBytes: [1, 2, 3]) == nil)
    }
}

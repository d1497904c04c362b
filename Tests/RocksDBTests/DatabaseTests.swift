import CollectorTesting
import Foundation
import RocksDB
import Testing

@Suite("RocksDB wrapper on a real database")
struct DatabaseTests {
    let directory = TemporaryDirectory(prefix: "rocksdb")
    var path: String { directory.appending("db") }

    func open(_ families: [ColumnFamilyDescriptor] = [ColumnFamilyDescriptor(name: "data")]) throws -> Database {
        try Database.open(path: path, columnFamilies: families)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func dataSurvivesCloseAndReopen() throws {
        do {
            let db = try open()
            let data = try db.columnFamily("data")
            try db.put(Self.bytes("alpha"), Self.bytes("1"), in: data)
            let batch = WriteBatch()
            batch.put(Self.bytes("beta"), Self.bytes("2"), in: data)
            batch.put(Self.bytes("gamma"), Self.bytes("3"), in: data)
            batch.delete(Self.bytes("alpha"), in: data)
            #expect(batch.count == 3)
            try db.write(batch, sync: true)
            db.close()
        }
        let db = try open()
        let data = try db.columnFamily("data")
        #expect(try db.get(Self.bytes("alpha"), in: data) == nil)
        #expect(try db.get(Self.bytes("beta"), in: data) == Self.bytes("2"))
        #expect(try db.get(Self.bytes("gamma"), in: data) == Self.bytes("3"))
    }

    @Test func mergeResultSurvivesCompactionAndReopen() throws {
        let families = [ColumnFamilyDescriptor(name: "counters", mergeOperator: CounterMergeOperator())]
        do {
            let db = try open(families)
            let counters = try db.columnFamily("counters")
            try db.put(Self.bytes("hits"), CounterMergeOperator.encode(1000), in: counters)
            for value in 1...100 {
                try db.merge(Self.bytes("hits"), CounterMergeOperator.encode(UInt64(value)), in: counters)
            }
            let batch = WriteBatch()
            for _ in 0..<10 { batch.merge(Self.bytes("misses"), CounterMergeOperator.encode(7), in: counters) }
            try db.write(batch)
            #expect(try db.get(Self.bytes("hits"), in: counters) == CounterMergeOperator.encode(1000 + 5050))
            try db.flush(counters)
            try db.compact(counters)
            #expect(try db.get(Self.bytes("hits"), in: counters) == CounterMergeOperator.encode(6050))
            db.close()
        }
        let db = try open(families)
        let counters = try db.columnFamily("counters")
        #expect(try db.get(Self.bytes("hits"), in: counters) == CounterMergeOperator.encode(6050))
        #expect(try db.get(Self.bytes("misses"), in: counters) == CounterMergeOperator.encode(70))
        // Merges keep working on top of the compacted value.
        try db.merge(Self.bytes("hits"), CounterMergeOperator.encode(1), in: counters)
        #expect(try db.get(Self.bytes("hits"), in: counters) == CounterMergeOperator.encode(6051))
    }

    @Test func failedMergeIsReportedAsCorruption() throws {
        let db = try open([ColumnFamilyDescriptor(name: "counters", mergeOperator: CounterMergeOperator())])
        let counters = try db.columnFamily("counters")
        try db.merge(Self.bytes("bad"), Self.bytes("not eight bytes"), in: counters)
        #expect(throws: RocksDBError.self) { try db.get(Self.bytes("bad"), in: counters) }
        do {
            _ = try db.get(Self.bytes("bad"), in: counters)
        } catch let error as RocksDBError {
            #expect(error.kind == .corruption)
        }
    }

    @Test func secondOpenOfALockedDatabaseFails() throws {
        let first = try open()
        defer { first.close() }
        do {
            _ = try open()
            Issue.record("a second open of the same database succeeded")
        } catch let error as RocksDBError {
            #expect(error.kind == .locked)
            #expect(error.description.contains("locked"))
        }
        first.close()
        // Once closed, the lock is released.
        let again = try open()
        again.close()
    }

    @Test func iteratorRespectsBounds() throws {
        let db = try open()
        let data = try db.columnFamily("data")
        for index in 0..<10 { try db.put([UInt8(index)], [UInt8(index * 10)], in: data) }
        let iterator = try db.makeIterator(data, lowerBound: [3], upperBound: [7])
        var seen: [UInt8] = []
        iterator.seekToFirst()
        while iterator.isValid {
            seen.append(iterator.key[0])
            #expect(iterator.value == [iterator.key[0] * 10])
            iterator.next()
        }
        try iterator.checkError()
        #expect(seen == [3, 4, 5, 6])
        iterator.seekToLast()
        #expect(iterator.key == [6])
        iterator.seek(to: [5])
        #expect(iterator.key == [5])
        iterator.seek(to: [9])
        #expect(!iterator.isValid)

        var scanned: [UInt8] = []
        try db.scan(data, lowerBound: [8]) { key, _ in
            scanned.append(key[0])
            return true
        }
        #expect(scanned == [8, 9])
    }

    @Test func snapshotSeesTheOldState() throws {
        let db = try open()
        let data = try db.columnFamily("data")
        try db.put(Self.bytes("k"), Self.bytes("old"), in: data)
        let snapshot = try db.snapshot()
        try db.put(Self.bytes("k"), Self.bytes("new"), in: data)
        try db.put(Self.bytes("k2"), Self.bytes("added"), in: data)
        #expect(try db.get(Self.bytes("k"), in: data, snapshot: snapshot) == Self.bytes("old"))
        #expect(try db.get(Self.bytes("k2"), in: data, snapshot: snapshot) == nil)
        #expect(try db.get(Self.bytes("k"), in: data) == Self.bytes("new"))
        var keys: [[UInt8]] = []
        try db.scan(data, snapshot: snapshot) { key, _ in
            keys.append(Array(key))
            return true
        }
        #expect(keys == [Self.bytes("k")])
    }

    @Test func deleteRangeRemovesOnlyTheRange() throws {
        let db = try open()
        let data = try db.columnFamily("data")
        for index in 0..<10 { try db.put([UInt8(index)], [1], in: data) }
        try db.deleteRange(from: [2], to: [5], in: data)
        let batch = WriteBatch()
        batch.deleteRange(from: [8], to: [10], in: data)
        try db.write(batch)
        var remaining: [UInt8] = []
        try db.scan(data) { key, _ in
            remaining.append(key[0])
            return true
        }
        #expect(remaining == [0, 1, 5, 6, 7])
    }

    @Test func checkpointIsAnOpenableCopy() throws {
        let checkpoint = directory.appending("checkpoint")
        do {
            let db = try open()
            let data = try db.columnFamily("data")
            try db.put(Self.bytes("kept"), Self.bytes("yes"), in: data)
            try db.createCheckpoint(at: checkpoint)
            try db.put(Self.bytes("after"), Self.bytes("no"), in: data)
            db.close()
        }
        let copy = try Database.open(path: checkpoint, columnFamilies: [ColumnFamilyDescriptor(name: "data")])
        let data = try copy.columnFamily("data")
        #expect(try copy.get(Self.bytes("kept"), in: data) == Self.bytes("yes"))
        #expect(try copy.get(Self.bytes("after"), in: data) == nil)
    }

    @Test func propertiesAndStatistics() throws {
        let db = try open()
        let data = try db.columnFamily("data")
        for index in 0..<100 { try db.put(Self.bytes("key\(index)"), Self.bytes("value"), in: data) }
        try db.flush(data)
        #expect((db.integerProperty("rocksdb.estimate-num-keys", of: data) ?? 0) > 0)
        #expect((db.integerProperty("rocksdb.total-sst-files-size", of: data) ?? 0) > 0)
        #expect(db.property("rocksdb.stats")?.contains("Compaction") == true)
        #expect(db.integerProperty("rocksdb.no-such-property") == nil)
        let tickers = db.statisticsTickers()
        #expect((tickers["rocksdb.bytes.written"] ?? 0) > 0)
    }

    @Test func missingColumnFamiliesAreCreatedAndUnknownOnesKept() throws {
        do {
            let db = try open([ColumnFamilyDescriptor(name: "legacy")])
            try db.put(Self.bytes("x"), Self.bytes("1"), in: try db.columnFamily("legacy"))
            db.close()
        }
        // Opening without naming "legacy" still works and keeps it reachable.
        let db = try open([ColumnFamilyDescriptor(name: "fresh")])
        #expect(db.columnFamilies.keys.sorted() == ["default", "fresh", "legacy"])
        #expect(try db.get(Self.bytes("x"), in: try db.columnFamily("legacy")) == Self.bytes("1"))
        #expect(throws: RocksDBError.self) { try db.columnFamily("absent") }
    }

    @Test func operationsAfterCloseThrowAndCloseIsIdempotent() throws {
        let db = try open()
        let data = try db.columnFamily("data")
        db.close()
        db.close()
        #expect(db.isClosed)
        do {
            try db.put(Self.bytes("k"), Self.bytes("v"), in: data)
            Issue.record("put after close succeeded")
        } catch let error as RocksDBError {
            #expect(error.kind == .closed)
        }
        #expect(throws: RocksDBError.self) { try db.makeIterator(data) }
        #expect(throws: RocksDBError.self) { try db.snapshot() }
    }

    @Test func concurrentWritersFromManyTasks() async throws {
        let db = try open([ColumnFamilyDescriptor(name: "counters", mergeOperator: CounterMergeOperator())])
        let counters = try db.columnFamily("counters")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<250 {
                        try db.merge(Array("total".utf8), CounterMergeOperator.encode(1), in: counters)
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try db.get(Array("total".utf8), in: counters) == CounterMergeOperator.encode(2000))
        db.close()
    }
}

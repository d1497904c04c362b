import CollectorTesting
import Foundation
import RocksDB
import Synchronization
import Testing
import TimeSeries

@Suite("Remote-write outbox: one batch with the log, cursors per destination, crash-safe")
struct RemoteOutboxTests {
    static let start: Int64 = 1_773_100_800
    static let now = Date(timeIntervalSince1970: TimeInterval(start + 3600))

    static func open(_ directory: TemporaryDirectory, destinations: [String], maxBacklog: Int = 1 << 30,
                     discarded: @escaping (Int) -> Void = { _ in }) throws -> (Database, TimeSeriesStore) {
        var settings = TimeSeriesSettings()
        settings.remoteWriteDestinations = destinations
        settings.remoteWriteMaxBacklogBytes = maxBacklog
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        return (db, try TimeSeriesStore(database: db, settings: settings, discardedOutboxEntries: discarded))
    }

    static func point(_ second: Int64, value: Double = 1) -> SeriesPoint {
        SeriesPoint(organization: "acme", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b1")],
                    fields: [(name: "upl_bytes", value: value), (name: "dwl_bytes", value: value * 2)],
                    timestamp: (start + second) * 1_000_000_000)
    }

    /// Keys left in the outbox column family.
    static func outboxKeys(_ db: Database) throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        try db.scan(try db.columnFamily(RemoteOutbox.familyName)) { key, _ in
            keys.append(Array(key))
            return true
        }
        return keys
    }

    @Test func everyAcceptedWriteIsQueuedForEachDestinationAndDeletedWhenAllPassedIt() throws {
        let directory = TemporaryDirectory(prefix: "outbox")
        let (db, store) = try Self.open(directory, destinations: ["a", "b"])
        defer { db.close() }
        let outbox = try #require(store.outbox)
        for second in 0..<3 {
            #expect(try store.write([Self.point(Int64(second))], now: Self.now, sync: false).stored == 2)
        }
        // A refused sample is not queued: only what the store accepted is forwarded.
        let refused = try store.write([Self.point(-90 * 86_400)], now: Self.now, sync: false)
        #expect(refused.stored == 0)
        let forA = try outbox.entries(for: "a", maxSamples: 100)
        #expect(forA.map(\.samples) == [2, 2, 2])
        #expect(outbox.backlog("a") == RemoteOutbox.Backlog(bytes: forA.reduce(0) { $0 + $1.size }, samples: 6, entries: 3))
        // The batch limit keeps whole entries, at least one.
        #expect(try outbox.entries(for: "a", maxSamples: 3).count == 1)
        #expect(try outbox.entries(for: "a", maxSamples: 1).count == 1)

        try outbox.acknowledge("a", forA)
        #expect(try outbox.entries(for: "a", maxSamples: 100).isEmpty)
        #expect(outbox.backlog("a") == RemoteOutbox.Backlog())
        // b has not passed them: they stay.
        #expect(try Self.outboxKeys(db).filter { $0.first == UInt8(ascii: "e") }.count == 3)
        let forB = try outbox.entries(for: "b", maxSamples: 100)
        #expect(forB.map(\.sequence) == forA.map(\.sequence))
        try outbox.acknowledge("b", Array(forB.prefix(2)))
        #expect(try Self.outboxKeys(db).filter { $0.first == UInt8(ascii: "e") }.count == 1)
        try outbox.acknowledge("b", Array(forB.suffix(1)))
        #expect(try Self.outboxKeys(db).filter { $0.first == UInt8(ascii: "e") }.isEmpty)
    }

    @Test func aReopenResumesFromTheCursorAndSequencesGoOnPastIt() throws {
        let directory = TemporaryDirectory(prefix: "outbox-reopen")
        var sent: [UInt64] = []
        do {
            let (db, store) = try Self.open(directory, destinations: ["a"])
            let outbox = try #require(store.outbox)
            for second in 0..<4 { _ = try store.write([Self.point(Int64(second))], now: Self.now, sync: false) }
            let entries = try outbox.entries(for: "a", maxSamples: 4)
            #expect(entries.count == 2)
            try outbox.acknowledge("a", entries)
            sent = entries.map(\.sequence)
            // Everything flushed: the ingest log is empty, the outbox still holds two writes.
            try store.flush()
            #expect(store.pendingLogEntries == 0)
            db.close()
        }
        do {
            // As after kill -9: the unacknowledged writes come again, the acknowledged ones do not.
            let (db, store) = try Self.open(directory, destinations: ["a"])
            let outbox = try #require(store.outbox)
            let again = try outbox.entries(for: "a", maxSamples: 100)
            #expect(again.count == 2)
            #expect(again.allSatisfy { $0.sequence > sent.max() ?? 0 })
            try outbox.acknowledge("a", again)
            try store.flush()
            db.close()
        }
        do {
            // Log and outbox both empty: new writes still get sequences after the cursor.
            let (db, store) = try Self.open(directory, destinations: ["a"])
            defer { db.close() }
            let outbox = try #require(store.outbox)
            _ = try store.write([Self.point(10)], now: Self.now, sync: false)
            #expect(try outbox.entries(for: "a", maxSamples: 100).count == 1)
        }
    }

    @Test func destinationsAddedOrRemovedAtOpen() throws {
        let directory = TemporaryDirectory(prefix: "outbox-destinations")
        do {
            let (db, store) = try Self.open(directory, destinations: ["a"])
            for second in 0..<2 { _ = try store.write([Self.point(Int64(second))], now: Self.now, sync: false) }
            db.close()
        }
        do {
            // A new destination starts at the oldest queued write (a URL that changed keeps the
            // backlog); a removed one no longer holds entries back.
            let (db, store) = try Self.open(directory, destinations: ["b"])
            let outbox = try #require(store.outbox)
            let entries = try outbox.entries(for: "b", maxSamples: 100)
            #expect(entries.count == 2)
            try outbox.acknowledge("b", entries)
            #expect(try Self.outboxKeys(db).filter { $0.first == UInt8(ascii: "e") }.isEmpty)
            _ = try store.write([Self.point(5)], now: Self.now, sync: false)
            db.close()
        }
        // No destination: nothing is queued, and what was queued is discarded (and reported).
        let discarded = Mutex(0)
        let (db, store) = try Self.open(directory, destinations: []) { count in discarded.withLock { $0 = count } }
        defer { db.close() }
        #expect(store.outbox == nil)
        #expect(discarded.withLock { $0 } == 1)
        #expect(try Self.outboxKeys(db).isEmpty)
        _ = try store.write([Self.point(6)], now: Self.now, sync: false)
        #expect(try Self.outboxKeys(db).isEmpty)
    }

    @Test func aFullBacklogRefusesWritesAndStoresNothingOfThem() throws {
        let directory = TemporaryDirectory(prefix: "outbox-full")
        let (db, store) = try Self.open(directory, destinations: ["a"], maxBacklog: 200)
        defer { db.close() }
        let outbox = try #require(store.outbox)
        var accepted = 0
        var refusal: (any Error)?
        for second in 0..<20 {
            do {
                accepted += try store.write([Self.point(Int64(second))], now: Self.now, sync: false).stored
            } catch {
                refusal = error
                break
            }
        }
        let error = try #require(refusal as? TimeSeriesError)
        guard case .remoteBacklogFull(let name, let bytes) = error else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(name == "a")
        #expect(bytes >= 200)
        #expect(store.pendingSamples == accepted)
        #expect(outbox.backlog("a").samples == accepted)
        // Draining makes room again.
        try outbox.acknowledge("a", try outbox.entries(for: "a", maxSamples: 1_000))
        #expect(try store.write([Self.point(100)], now: Self.now, sync: false).stored == 2)
    }

    @Test func readersStopBeforeAWriteStillInFlight() async throws {
        let directory = TemporaryDirectory(prefix: "outbox-inflight")
        let (db, store) = try Self.open(directory, destinations: ["a"])
        defer { db.close() }
        let outbox = try #require(store.outbox)
        _ = try store.write([Self.point(0)], now: Self.now, sync: false)
        let first = try outbox.entries(for: "a", maxSamples: 100)
        try outbox.acknowledge("a", first)
        // Two writers: the earlier sequence commits last. Until it does, the later one is not
        // readable either, so a reader never moves its cursor past an entry it has not seen.
        var next = (first.last?.sequence ?? 0) + 1
        let slow = outbox.reserve { defer { next += 1 }; return next }
        let fast = outbox.reserve { defer { next += 1 }; return next }
        let family = try db.columnFamily(RemoteOutbox.familyName)
        for sequence in [fast, slow] {
            let batch = WriteBatch()
            let size = outbox.put(into: batch, sequence: sequence, logEntry: [1], samples: 1, now: Self.now)
            try db.write(batch)
            if sequence == fast {
                outbox.finish(sequence, size: size, samples: 1, committed: true)
                #expect(try outbox.entries(for: "a", maxSamples: 100).isEmpty)
                let waiter = Task { await outbox.waitForEntries(after: first.last?.sequence ?? 0) }
                waiter.cancel()
                #expect(await waiter.value == false)
            } else {
                outbox.finish(sequence, size: size, samples: 1, committed: true)
            }
        }
        _ = family
        #expect(try outbox.entries(for: "a", maxSamples: 100).map(\.sequence) == [slow, fast])
        #expect(await outbox.waitForEntries(after: first.last?.sequence ?? 0))
    }
}

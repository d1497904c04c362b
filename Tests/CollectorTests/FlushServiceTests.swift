import CollectorHTTP
import CollectorTesting
import Foundation
import Ingestion
import Logging
import MetricsTestKit
import NIOCore
import NIOPosix
import RocksDB
import ServiceLifecycle
import Synchronization
import Testing
import TimeSeries

@Suite("Flush service")
struct FlushServiceTests {
    @Test(.timeLimit(.minutes(3))) func pendingSamplesReachTheirBlocksAndShutdownFlushesTheRest() async throws {
        let directory = TemporaryDirectory(prefix: "flush-service")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        var settings = TimeSeriesSettings()
        settings.flushInterval = .milliseconds(20)
        let store = try TimeSeriesStore(database: db, settings: settings)
        let metrics = TestMetrics()
        let now = Date()
        let point = SeriesPoint(organization: "o", measurement: "m", tags: [], fields: [(name: "v", value: 1)],
                                timestamp: Int64(now.timeIntervalSince1970) * 1_000_000_000)
        _ = try store.write([point], now: now, sync: false)
        #expect(store.pendingLogEntries == 1)

        let service = FlushService(store: store, tick: .milliseconds(5), settleAfter: .milliseconds(20), settleAbove: 0, logger: Logger(label: "test"),
                                   metrics: IngestMetrics(factory: metrics))
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Wait on the service's first flush itself; the test's time limit bounds the wait.
            #expect(await store.flushed(atLeast: 1))
            #expect(store.pendingLogEntries == 0)
            // Quiet after that flush: the service settles the store once.
            #expect(try await eventually { store.settleCount == 1 })
            #expect(db.integerProperty("rocksdb.cur-size-all-mem-tables", of: try db.columnFamily("ingest_log")) ?? 1 < 4096)
            // Written after the last tick's flush: the shutdown flush must take it.
            _ = try store.write([SeriesPoint(organization: "o", measurement: "m", tags: [], fields: [(name: "v", value: 2)],
                                             timestamp: point.timestamp + 1)], now: now, sync: false)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(store.pendingSamples == 0)
        #expect(try metrics.expectCounter("flashback_ingest_flushes_total").totalValue >= 1)
        #expect(try metrics.expectGauge("flashback_series").lastValue == 1)
        db.close()
        // Reopened, nothing is left in the log and both samples are in the blocks.
        let reopened = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        let again = try TimeSeriesStore(database: reopened)
        #expect(again.pendingLogEntries == 0)
        let field = try #require(again.index.existingFieldID("v"))
        let id = try #require(again.index.series(organization: "o", measurement: "m").first?.id)
        let seconds = Int64(now.timeIntervalSince1970)
        #expect(try again.rollups(series: id, field: field, start: seconds - 60, end: seconds + 60, perDay: false).reduce(0) { $0 + $1.rollup.count } == 2)
        reopened.close()
    }

    /// A quiet fleet's sparse reports leave little in the memtables: after each quiet period the
    /// service asks, and the store does not settle below the threshold (a settle flushes every
    /// memtable and compacts, too much work for a few reports a minute).
    @Test(.timeLimit(.minutes(3))) func sparseReportsDoNotSettle() async throws {
        let directory = TemporaryDirectory(prefix: "flush-sparse")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        defer { db.close() }
        var settings = TimeSeriesSettings()
        settings.flushInterval = .milliseconds(10)
        let store = try TimeSeriesStore(database: db, settings: settings)
        let service = FlushService(store: store, tick: .milliseconds(5), settleAfter: .milliseconds(20), logger: Logger(label: "test"))
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
        let now = Date()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for report in 0..<3 {
                let points = (0..<20).map { node in
                    SeriesPoint(organization: "o", measurement: "node_bucket", tags: [(key: "node", value: "n\(node)")],
                                fields: [(name: "latency_ms", value: Double(node) + 0.5)],
                                timestamp: (Int64(now.timeIntervalSince1970) + Int64(report)) * 1_000_000_000)
                }
                let checks = store.settleChecks
                _ = try store.write(points, now: now, sync: false)
                // The report is flushed, the fleet falls quiet, the service asks whether to settle.
                #expect(try await eventually { store.settleChecks > checks })
                #expect(store.pendingSamples == 0)
            }
            #expect(store.settleableBytes < 16 << 20)
            #expect(store.settleCount == 0)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // The same store, asked with a threshold its memtables reach, settles.
        #expect(try store.settle(ifAbove: 1))
        #expect(store.settleCount == 1)
    }

    /// The service never waits on NIO's shared blocking pool: with every thread of it held
    /// (organization keys are generated there, checkpoints taken), the next flush still happens.
    /// (With the flushes on that pool, this test waits until its time limit: checked with one
    /// minute.)
    @Test(.timeLimit(.minutes(3))) func flushesGoOnWhileTheSharedBlockingPoolIsHeld() async throws {
        let directory = TemporaryDirectory(prefix: "flush-own-thread")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        defer { db.close() }
        var settings = TimeSeriesSettings()
        settings.flushInterval = .milliseconds(10)
        let store = try TimeSeriesStore(database: db, settings: settings)
        let service = FlushService(store: store, tick: .milliseconds(5), logger: Logger(label: "test"))
        let group = ServiceGroup(services: [service], logger: Logger(label: "test"))

        // Every thread of the shared pool waits on `release` until the test ends.
        let threads = NIOSingletons.blockingPoolThreadCountSuggestion
        let holding = HeldThreads()
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<threads {
            NIOThreadPool.singleton.submit { _ in
                holding.count.add(1, ordering: .relaxed)
                release.wait()
            }
        }
        let released = Atomic<Bool>(false)
        func releaseThreads() {
            if !released.exchange(true, ordering: .relaxed) { for _ in 0..<threads { release.signal() } }
        }
        defer { releaseThreads() }
        #expect(try await eventually { holding.count.load(ordering: .relaxed) == threads })

        let now = Date()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            _ = try store.write([SeriesPoint(organization: "o", measurement: "m", tags: [], fields: [(name: "v", value: 1)],
                                             timestamp: Int64(now.timeIntervalSince1970) * 1_000_000_000)], now: now, sync: false)
            // The test's time limit bounds the wait.
            #expect(await store.flushed(atLeast: 1))
            #expect(holding.count.load(ordering: .relaxed) == threads, "the pool was held throughout")
            releaseThreads()
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(store.pendingSamples == 0)
    }

    final class HeldThreads: Sendable {
        let count = Atomic<Int>(0)
    }
}

import CSystemMemory
import CoreMetrics
import Foundation
import Logging
import NIOPosix
import ServiceLifecycle
import TimeSeries

/// Moves accepted samples from memory into their blocks: checks every `tick` whether the buffer
/// is due (``TimeSeriesStore/flushIfDue()``), seals closed days once a minute, and flushes once
/// more on graceful shutdown, after the listeners stopped (services stop in reverse order).
/// Nothing depends on the final flush for durability: the ingest log is replayed at open.
/// When writes stop for `settleAfter` after a burst (at least `settleAbove` bytes in memtables
/// and ingest-log files), it settles the store once (``TimeSeriesStore/settle()``): a quiet
/// collector does not keep the last burst's log files and tombstones on disk, and a fleet's
/// sparse reports do not turn into a memtable flush each.
///
/// A settle waits for RocksDB's compactions (seconds after a burst), and sealing days reads and
/// writes a day's records: both run on a thread of the service's own, not on Swift's
/// cooperative threads (one a core), which serve the requests, nor on the shared blocking pool,
/// where other work (key generation, checkpoints) would hold them up. A flush is CPU work the
/// load brings and runs on the service's task like the writes that brought it.
public struct FlushService: Service {
    /// Freed memory the C allocator may keep for reuse between flushes (more is returned to the
    /// kernel after a flush): measured with `wrk` against the unbounded build, peak RSS 205-233 MiB
    /// against 208-265 MiB, for CPU a line within noise in one series of runs and about 15 %
    /// higher in another (pages faulted in again).
    static let retainedFreeBytes: UInt64 = 64 << 20

    private let store: TimeSeriesStore
    private let tick: Duration
    private let settleAfter: Duration
    private let settleAbove: UInt64
    private let logger: Logger
    private let clock: @Sendable () -> Date
    private let metrics: IngestMetrics

    /// Flushes `store` every `tick` when due (and seals closed days once a minute).
    public init(store: TimeSeriesStore, tick: Duration = .milliseconds(100), settleAfter: Duration = .seconds(2),
                settleAbove: UInt64 = 16 << 20, logger: Logger,
                metrics: IngestMetrics = IngestMetrics(), clock: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.settleAfter = settleAfter
        self.settleAbove = settleAbove
        self.metrics = metrics
        self.tick = tick
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        let worker = NIOThreadPool(numberOfThreads: 1)
        worker.start()
        await flushUntilShutdown(on: worker)
        try? await worker.shutdownGracefully()
        do {
            // On this thread: the service may be cancelled by now, and this flush must run.
            try store.flush()
        } catch {
            logger.error("final flush failed; the ingest log will be replayed at the next start", metadata: ["error": "\(error)"])
        }
    }

    /// Flushes when due, seals, settles, until a graceful shutdown (or cancellation).
    private func flushUntilShutdown(on worker: NIOThreadPool) async {
        var lastSealCheck = ContinuousClock.now - .seconds(3600)
        var failing = false
        var flushesCounted = store.flushCount
        var lastFlush = ContinuousClock.now
        var settled = true
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
            } catch {
                break
            }
            do {
                // CPU work the load brings (tens of milliseconds under load): on this task,
                // it takes a share of the cores like the writes do. (On the service's thread,
                // three threads competed for two cores: 6 % fewer lines a second in an A/B of
                // six runs each, within this machine's noise but never better.)
                let started = ContinuousClock.now
                if try store.flushIfDue() {
                    let (seconds, attoseconds) = (ContinuousClock.now - started).components
                    metrics.flushDuration.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
                    // glibc keeps freed buffers for reuse (see fb_exec_with_runtime_settings);
                    // past a bound, give them back, so peak RSS stays what the load needs.
                    _ = fb_release_free_memory_above(Self.retainedFreeBytes)
                }
                metrics.pendingSamples.record(store.pendingSamples)
                metrics.series.record(store.index.seriesCount)
                if ContinuousClock.now - lastSealCheck >= .seconds(60) {
                    lastSealCheck = .now
                    let now = clock()
                    let written = try await worker.runIfActive { try store.sealDays(now: now) }
                    if written > 0 { metrics.sealedDayRecords.increment(by: written) }
                    if written > 0 { logger.info("sealed day rollups", metadata: ["records": "\(written)", "through_day": "\(store.sealedThroughDay ?? 0)"]) }
                }
                let flushes = store.flushCount
                if flushes > flushesCounted {
                    metrics.flushes.increment(by: flushes - flushesCounted)
                    lastFlush = .now
                    settled = false
                }
                flushesCounted = flushes
                if !settled, store.pendingSamples == 0, ContinuousClock.now - lastFlush >= settleAfter {
                    settled = true
                    let settleAbove = settleAbove
                    try await worker.runIfActive {
                        try store.settle(ifAbove: settleAbove)
                        // The burst is over: give the buffers it freed back to the kernel (glibc
                        // keeps them for reuse, which under load saves the page faults of taking
                        // them again; between bursts they are only resident memory).
                        _ = fb_release_free_memory()
                    }
                }
                if failing { logger.info("flushing recovered") }
                failing = false
            } catch is CancellationError {
                break
            } catch {
                // The samples stay in memory and in the ingest log; the next tick retries.
                metrics.flushFailures.increment()
                if !failing { logger.error("flush failed; retrying", metadata: ["error": "\(error)"]) }
                failing = true
            }
        }
    }
}

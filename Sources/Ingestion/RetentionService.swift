import Logging
import ServiceLifecycle
import TimeSeries

/// Enforces retention continuously: sample blocks past `--retention-minute` and day records past
/// `--retention-day` are dropped by the compaction filters whenever RocksDB compacts, and this
/// service forces a full compaction of both every `interval` so that data nobody rewrites ages
/// out too.
public struct RetentionService: Service {
    private let store: TimeSeriesStore
    private let interval: Duration
    private let logger: Logger

    /// Forces a retention compaction of `store` every `interval`.
    public init(store: TimeSeriesStore, interval: Duration, logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            if Task.isShuttingDownGracefully { return }
            let started = ContinuousClock.now
            do {
                try store.enforceRetention()
                logger.info("retention compaction done", metadata: ["duration": "\(ContinuousClock.now - started)"])
            } catch {
                logger.error("retention compaction failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

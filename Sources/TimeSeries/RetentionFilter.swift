import Foundation
import RocksDB

/// Drops rollup records whose interval ended more than `retention` ago, during compactions of
/// the `minute` (or `day`) column family. Keys are ``RollupKey``s.
public struct RetentionFilter: CompactionFilter {
    public let name: String
    /// Minutes per interval of the column family (1 for `minute`, 1440 for `day`).
    public let minutesPerInterval: UInt32
    public let retention: TimeInterval
    private let clock: @Sendable () -> Date

    /// A `RetentionFilter` from its parts.
    public init(name: String = "flashback.retention.v1", minutesPerInterval: UInt32 = 1, retention: TimeInterval, clock: @escaping @Sendable () -> Date = { Date() }) {
        self.name = name
        self.minutesPerInterval = minutesPerInterval
        self.retention = retention
        self.clock = clock
    }

    /// Whether the entry at `key` is past retention (RocksDB calls this during compactions).
    public func shouldRemove(level: Int, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        guard key.count == 12 else { return false }
        let interval = UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let endMinute = (Double(interval) + 1) * Double(minutesPerInterval)
        let cutoffMinute = (clock().timeIntervalSince1970 - retention) / 60
        return endMinute <= cutoffMinute
    }
}

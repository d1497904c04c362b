import Foundation
import RocksDB

/// Drops records whose interval ended more than `retention` ago, during compactions of the
/// `blocks` (``BlockKey``), `day` and format 2's `samples` (``RollupKey``) column families.
public struct RetentionFilter: CompactionFilter {
    /// Where a key holds its interval.
    public enum Layout: Sendable {
        /// ``RollupKey``: `series u64 ‖ interval u32`.
        case seriesInterval
        /// ``BlockKey``: `day u32 ‖ series u64 ‖ span u8`; the interval is the span's last hour.
        case dayMajorHours
        /// `series u64` keys of ``RunningTotalsHead`` values: the interval is the head's last day.
        case runningTotalsHead
    }

    public let name: String
    public let layout: Layout
    /// Minutes per interval of the column family (1 for `minute`, 1440 for `day`).
    public let minutesPerInterval: UInt32
    public let retention: TimeInterval
    private let clock: @Sendable () -> Date

    /// A `RetentionFilter` from its parts.
    public init(name: String = "flashback.retention.v1", layout: Layout = .seriesInterval, minutesPerInterval: UInt32 = 1, retention: TimeInterval,
                clock: @escaping @Sendable () -> Date = { Date() }) {
        self.name = name
        self.layout = layout
        self.minutesPerInterval = minutesPerInterval
        self.retention = retention
        self.clock = clock
    }

    /// Whether the entry at `key` is past retention (RocksDB calls this during compactions).
    public func shouldRemove(level: Int, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        let interval: Double
        switch layout {
        case .seriesInterval:
            guard key.count == 12 else { return false }
            interval = Double(UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        case .runningTotalsHead:
            // Ages with the last day it holds.
            guard key.count == 8, let day = RunningTotalsHead.lastDay(of: value) else { return false }
            interval = Double(day)
        case .dayMajorHours:
            guard key.count == BlockKey.size else { return false }
            let span = Double(key[12]) * Double(BlockKey.hoursPerBlock)
            interval = Double(UInt32(bigEndian: key.loadUnaligned(fromByteOffset: 0, as: UInt32.self))) * 24 + span + Double(BlockKey.hoursPerBlock - 1)
        }
        let endMinute = (interval + 1) * Double(minutesPerInterval)
        let cutoffMinute = (clock().timeIntervalSince1970 - retention) / 60
        return endMinute <= cutoffMinute
    }
}

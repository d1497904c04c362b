/// Keys of the rollup column families: `series id u64 BE ‖ interval start u32 BE`, where the
/// interval start is in minutes since the Unix epoch (`minute`) or days since it (`day`).
/// Big-endian, so RocksDB's byte order is series order, then time order.
public struct RollupKey: Equatable, Hashable, Sendable {
    public var series: UInt64
    public var interval: UInt32

    public init(series: UInt64, interval: UInt32) {
        self.series = series
        self.interval = interval
    }

    /// The minute containing `nanoseconds` (which must not be negative).
    public static func minute(ofNanoseconds nanoseconds: Int64) -> UInt32 {
        UInt32(clamping: nanoseconds / 60_000_000_000)
    }

    /// The day containing `minute`.
    public static func day(ofMinute minute: UInt32) -> UInt32 { minute / 1440 }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(12)
        withUnsafeBytes(of: series.bigEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: interval.bigEndian) { out.append(contentsOf: $0) }
        return out
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        let array = Array(bytes)
        series = array[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        interval = array[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

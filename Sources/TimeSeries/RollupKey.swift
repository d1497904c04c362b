/// Keys of the time-series column families: `series id u64 BE ‖ interval u32 BE`, where the
/// interval counts hours since the Unix epoch (`samples`: one block per series-hour) or days
/// since it (`day`).
/// Big-endian, so RocksDB's byte order is series order, then time order.
public struct RollupKey: Equatable, Hashable, Sendable {
    public var series: UInt64
    public var interval: UInt32

    /// A `RollupKey` from its parts.
    public init(series: UInt64, interval: UInt32) {
        self.series = series
        self.interval = interval
    }

    /// The minute containing `nanoseconds` (which must not be negative).
    public static func minute(ofNanoseconds nanoseconds: Int64) -> UInt32 {
        UInt32(clamping: nanoseconds / 60_000_000_000)
    }

    /// The hour containing `nanoseconds` (which must not be negative).
    public static func hour(ofNanoseconds nanoseconds: Int64) -> UInt32 {
        UInt32(clamping: nanoseconds / 3_600_000_000_000)
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

    /// Writes the 12 key bytes into `buffer` (which must hold 12 bytes), without allocating.
    public func write(into buffer: inout [UInt8]) {
        withUnsafeBytes(of: series.bigEndian) { buffer.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: interval.bigEndian) { buffer.replaceSubrange(8..<12, with: $0) }
    }

    /// A `RollupKey` from its parts.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 12 else { return nil }
        let array = Array(bytes)
        series = array[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        interval = array[8..<12].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

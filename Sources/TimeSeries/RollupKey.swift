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

/// Keys of the `blocks` column family: `day u32 BE ‖ series id u64 BE ‖ span u8` (days since the
/// Unix epoch; span 0–5: the day's hours 0–3, 4–7, … 20–23), one sample block per series and
/// four hours.
///
/// Day first, so that RocksDB's order is day, then series, then span: a day's blocks are one
/// key range, which new samples (nearly all of today) never interleave with older days. A
/// compaction of today's merge operands rewrites today, not the retained history, and the files
/// of older days move down the levels untouched; sealing a day reads one range. A series' spans
/// of one day are adjacent, so its rollups over a range cost one seek per day. Four hours a
/// block: a fleet reporting once a minute fills it with 240 samples a field, so the block's
/// header and the key cost a quarter of what hourly blocks did.
public struct BlockKey: Equatable, Hashable, Sendable {
    public static let size = 13
    /// Hours one block covers (a divisor of 24).
    public static let hoursPerBlock: UInt32 = 4
    /// Blocks in a day.
    public static let spansPerDay = UInt8(24 / hoursPerBlock)
    public var series: UInt64
    /// The first hour of the block's span (hours since the Unix epoch, a multiple of
    /// ``hoursPerBlock``).
    public var hour: UInt32

    /// The key of the block of `series` holding `hour`.
    public init(series: UInt64, hour: UInt32) {
        self.series = series
        self.hour = Self.spanStart(hour)
    }

    /// The first hour of the span holding `hour`.
    public static func spanStart(_ hour: UInt32) -> UInt32 { hour - hour % hoursPerBlock }

    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        write(into: &out)
        return out
    }

    /// Writes the 13 key bytes into `buffer` (which must hold 13 bytes), without allocating.
    public func write(into buffer: inout [UInt8]) {
        Self.write(day: hour / 24, series: series, span: UInt8(hour % 24 / Self.hoursPerBlock), into: &buffer)
    }

    /// The first key of `day` (a scan's bound; `day` may be one past the last day).
    public static func start(ofDay day: UInt32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        write(day: day, series: 0, span: 0, into: &out)
        return out
    }

    /// The key of `series` in `day` at `span`, which may be ``spansPerDay``: past the series'
    /// last block of the day (a scan's upper bound).
    public static func bound(day: UInt32, series: UInt64, span: UInt8) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: size)
        write(day: day, series: series, span: span, into: &out)
        return out
    }

    private static func write(day: UInt32, series: UInt64, span: UInt8, into buffer: inout [UInt8]) {
        withUnsafeBytes(of: day.bigEndian) { buffer.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: series.bigEndian) { buffer.replaceSubrange(4..<12, with: $0) }
        buffer[12] = span
    }

    /// A `BlockKey` from its bytes; `nil` unless 13 bytes with a span below ``spansPerDay``.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == Self.size, bytes[12] < Self.spansPerDay else { return nil }
        let day = readBigEndian(UInt32.self, bytes, at: 0)
        let (base, overflow) = day.multipliedReportingOverflow(by: 24)
        let (hour, carry) = base.addingReportingOverflow(UInt32(bytes[12]) * Self.hoursPerBlock)
        guard !overflow, !carry else { return nil }
        series = readBigEndian(UInt64.self, bytes, at: 4)
        self.hour = hour
    }

    /// The key's bytes as a `BlockKey`; see ``init(bytes:)-(UnsafeRawBufferPointer)``.
    public init?(bytes: [UInt8]) {
        guard let key = bytes.withUnsafeBytes({ BlockKey(bytes: $0) }) else { return nil }
        self = key
    }
}

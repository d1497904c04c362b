import Foundation

/// A time taken from a request (a query parameter, a JSON field, a line-protocol or datagram
/// header), bounded so that every layer below can compute with it without a trap.
///
/// The store keeps nanoseconds since the epoch in an `Int64`, which ends on 2262-04-11. A
/// `UnixTime` lies between 1970-01-01T00:00:00Z and 2261-12-31T23:59:59Z, so its nanoseconds, the
/// end of its day and a few months beyond all fit in an `Int64`: `seconds * 1_000_000_000`,
/// `seconds + 86_400` and `day * 86_400` can never overflow (DESIGN.md §5). Values outside the
/// range are refused where they enter (`nil` from the initialisers), and the route answers 400
/// naming the parameter; arithmetic further down clamps with ``init(clamping:)``.
public struct UnixTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Whole seconds since 1970-01-01T00:00:00Z, within ``earliest`` … ``latest``.
    public let seconds: Int64

    /// 1970-01-01T00:00:00Z.
    public static let earliest = UnixTime(unchecked: 0)
    /// 2261-12-31T23:59:59Z: the last second of the last whole year before `Int64` nanoseconds end.
    public static let latest = UnixTime(unchecked: 106_651 * 86_400 - 1)
    /// The range as text, for error messages.
    public static let rangeDescription = "between 1970-01-01T00:00:00Z and 2261-12-31T23:59:59Z (Unix seconds 0 to 9214646399)"

    private init(unchecked seconds: Int64) {
        self.seconds = seconds
    }

    /// `seconds` when inside the range, else `nil`.
    public init?(seconds: Int64) {
        guard (Self.earliest.seconds...Self.latest.seconds).contains(seconds) else { return nil }
        self.seconds = seconds
    }

    /// The whole second of `date` (rounded down) when inside the range; `nil` for NaN, infinities
    /// and instants outside it.
    public init?(_ date: Date) {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, interval >= Double(Self.earliest.seconds), interval < Double(Self.latest.seconds + 1) else { return nil }
        seconds = Int64(interval.rounded(.down))
    }

    /// The nearest time inside the range: for a clock or a derived bound, never for a value
    /// whose refusal the caller should see.
    public init(clamping seconds: Int64) {
        self.seconds = min(max(seconds, Self.earliest.seconds), Self.latest.seconds)
    }

    /// The nearest time inside the range (NaN maps to ``earliest``).
    public init(clamping date: Date) {
        let interval = date.timeIntervalSince1970
        guard interval.isFinite, interval > Double(Self.earliest.seconds) else {
            self = interval == .infinity ? Self.latest : Self.earliest
            return
        }
        guard interval < Double(Self.latest.seconds) else {
            self = Self.latest
            return
        }
        seconds = Int64(interval.rounded(.down))
    }

    /// Nanoseconds since the epoch; cannot overflow.
    public var nanoseconds: Int64 { seconds * 1_000_000_000 }

    /// Days since the epoch of the UTC day holding this time.
    public var day: Int64 { seconds / 86_400 }

    /// The first second of the day holding this time.
    public var startOfDay: UnixTime { UnixTime(unchecked: day * 86_400) }

    /// The last second of the day holding this time.
    public var endOfDay: UnixTime { UnixTime(unchecked: day * 86_400 + 86_399) }

    public var date: Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// This time moved by `delta` seconds, clamped to the range.
    public func adding(seconds delta: Int64) -> UnixTime {
        let (moved, overflow) = seconds.addingReportingOverflow(delta)
        return overflow ? (delta > 0 ? Self.latest : Self.earliest) : UnixTime(clamping: moved)
    }

    /// The start of day `day` (days since the epoch), when inside the range.
    public init?(day: Int64) {
        guard day >= 0, day <= Self.latest.day else { return nil }
        self.seconds = day * 86_400
    }

    public static func < (lhs: UnixTime, rhs: UnixTime) -> Bool { lhs.seconds < rhs.seconds }

    public var description: String { String(seconds) }
}

extension Int64 {
    /// `value` rounded toward zero, or the nearest bound when it is outside `Int64` (NaN is 0):
    /// the conversion to use on any `Double` that came from a request or from stored samples,
    /// where `Int64(_:)` would trap.
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int64(value)
        }
    }

    /// `self + other`, or the nearest bound of `Int64` when the sum is outside it.
    public func addingSaturated(_ other: Int64) -> Int64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? (other > 0 ? .max : .min) : sum
    }

    /// `self - other`, or the nearest bound of `Int64` when the difference is outside it.
    public func subtractingSaturated(_ other: Int64) -> Int64 {
        let (difference, overflow) = subtractingReportingOverflow(other)
        return overflow ? (other < 0 ? .max : .min) : difference
    }

    /// Nanoseconds since the epoch of `date`, saturating at the ends of `Int64` (clocks, derived
    /// bounds; request values go through ``UnixTime``).
    public init(saturatingNanosecondsOf date: Date) {
        self.init(saturating: (date.timeIntervalSince1970 * 1e9).rounded(.down))
    }
}

extension Int {
    /// `value` rounded toward zero, or the nearest bound when it is outside `Int` (NaN is 0).
    public init(saturating value: Double) {
        self = Int(Int64(saturating: value))
    }
}

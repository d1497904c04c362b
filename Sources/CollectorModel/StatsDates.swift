import Foundation

/// The date forms of the stats API: ISO-8601 dates and date-times in queries and bodies, the
/// client's `ddmmyyyy` integers, and ISO-8601 UTC with milliseconds in answers.
public enum StatsDates {
    /// `2024-02-01`, `2024-02-01T00:00:00Z`, `2024-02-01T00:00:00.000Z`, `…+02:00`. A date alone
    /// is the start of that UTC day and flagged, so that an end date can cover its whole day.
    /// `nil` for text that is no such date, and for instants outside ``UnixTime``'s range.
    public static func parseISO(_ text: String) -> (time: UnixTime, dateOnly: Bool)? {
        guard let parsed = ISO8601.parse(text), let time = UnixTime(seconds: parsed.seconds) else { return nil }
        return (time, parsed.dateOnly)
    }

    /// The client's `ddmmyyyy` integer (`15012024`; the leading zero may be missing: `1022024`)
    /// as days since the epoch.
    public static func parseDDMMYYYY(_ text: String) -> Int64? {
        guard (7...8).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let bytes = Array((text.utf8.count == 7 ? "0" + text : text).utf8)
        guard let day = number(bytes[0..<2]), let month = number(bytes[2..<4]), let year = number(bytes[4..<8]) else { return nil }
        return daysSinceEpoch(year: year, month: month, day: day)
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// Days since 1970-01-01 of a valid Gregorian date in years 1970–2261 (``UnixTime``'s
    /// range), or `nil`.
    static func daysSinceEpoch(year: Int64, month: Int64, day: Int64) -> Int64? {
        guard (1970...2261).contains(year), (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: Int(month), year: Int(year)) else { return nil }
        return CivilDate.daysSinceEpoch(year: Int(year), month: Int(month), day: Int(day))
    }

    /// `2025-06-01T08:01:00.000Z` for a time in milliseconds since the epoch.
    public static func format(milliseconds: Int64) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(24)
        append(milliseconds: milliseconds, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the ISO-8601 form of a time in milliseconds (24 bytes) without a formatter or
    /// any allocation, so ten thousand rows cost microseconds.
    /// Times outside years 0–9999 are written as the nearest of them.
    public static func append(milliseconds: Int64, to out: inout [UInt8]) {
        let milliseconds = min(max(milliseconds, -62_167_219_200_000), 253_402_300_799_999)
        let millis = ((milliseconds % 1000) + 1000) % 1000
        let seconds = (milliseconds - millis) / 1000
        let secondOfDay = ((seconds % 86_400) + 86_400) % 86_400
        let days = (seconds - secondOfDay) / 86_400
        let civil = CivilDate.civil(daysSinceEpoch: days)
        let (year, month, day) = (Int64(min(9999, max(0, civil.year))), Int64(civil.month), Int64(civil.day))
        func put(_ value: Int64, _ width: Int) {
            var divisor: Int64 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8(rest / divisor % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        put(year, 4)
        out.append(UInt8(ascii: "-"))
        put(month, 2)
        out.append(UInt8(ascii: "-"))
        put(day, 2)
        out.append(UInt8(ascii: "T"))
        put(secondOfDay / 3600, 2)
        out.append(UInt8(ascii: ":"))
        put(secondOfDay / 60 % 60, 2)
        out.append(UInt8(ascii: ":"))
        put(secondOfDay % 60, 2)
        out.append(UInt8(ascii: "."))
        put(millis, 3)
        out.append(UInt8(ascii: "Z"))
    }

    /// Milliseconds since the epoch of `date` (rounded down, saturating).
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64(saturating: (date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    /// `date` as the stats API writes times: ISO-8601 UTC with milliseconds (`2024-02-01T10:00:00.000Z`).
    public static func format(_ date: Date) -> String {
        format(milliseconds: milliseconds(date))
    }
}

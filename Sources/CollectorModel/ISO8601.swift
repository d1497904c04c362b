/// A strict parser of the ISO-8601 forms the Flashback API sends: `2024-02-01`,
/// `2024-02-01T10:00Z`, `2024-02-01T10:00:00Z`, `2024-02-01T10:00:00.123Z`, `…+02:00`, `…-0530`.
///
/// Strict where Foundation's parsers are lenient (they read hour 25 as the next day and accept
/// years of any length): four-digit years, real calendar days, hours 00–23, minutes 00–59,
/// seconds 00–60 (a leap second counts as :59), at most nine fraction digits (dropped: answers
/// are in whole seconds), offsets up to ±23:59. A date-time without a zone is UTC. Pure and
/// allocation-free over the UTF-8 bytes, so it is cheap per row and fuzzed on its own.
public enum ISO8601 {
    /// Seconds since 1970-01-01T00:00:00Z (may lie outside ``UnixTime``'s range: the caller
    /// bounds it) and whether the text was a date alone; `nil` for anything else.
    public static func parse(_ text: String) -> (seconds: Int64, dateOnly: Bool)? {
        var text = text
        return text.withUTF8 { parse(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// ``parse(_:)`` over raw bytes.
    public static func parse(bytes: UnsafeRawBufferPointer) -> (seconds: Int64, dateOnly: Bool)? {
        let count = bytes.count
        guard count >= 10, count <= 40 else { return nil }
        func digits(_ start: Int, _ length: Int) -> Int? {
            guard start + length <= count else { return nil }
            var value = 0
            for index in start..<(start + length) {
                let byte = bytes[index]
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"), let month = digits(5, 2), bytes[7] == UInt8(ascii: "-"),
              let day = digits(8, 2), (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year) else { return nil }
        let days = CivilDate.daysSinceEpoch(year: year, month: month, day: day)
        if count == 10 { return (days * 86_400, true) }
        guard bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), count > 13, bytes[13] == UInt8(ascii: ":"), let minute = digits(14, 2),
              hour < 24, minute < 60 else { return nil }
        var index = 16
        var second = 0
        if index < count, bytes[index] == UInt8(ascii: ":") {
            guard let parsed = digits(index + 1, 2), parsed <= 60 else { return nil }
            second = min(parsed, 59)
            index += 3
            if index < count, bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") {
                index += 1
                let start = index
                while index < count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
                guard index > start, index - start <= 9 else { return nil }
            }
        }
        var offset = 0
        if index < count {
            switch bytes[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                guard let hours = digits(index + 1, 2), hours < 24 else { return nil }
                index += 3
                var minutes = 0
                if index < count {
                    if bytes[index] == UInt8(ascii: ":") { index += 1 }
                    guard let parsed = digits(index, 2), parsed < 60 else { return nil }
                    minutes = parsed
                    index += 2
                }
                offset = sign * (hours * 3600 + minutes * 60)
            default:
                return nil
            }
        }
        guard index == count else { return nil }
        return (days * 86_400 + Int64(hour * 3600 + minute * 60 + second - offset), false)
    }

    /// The basic format AWS signatures use (`X-Amz-Date`): `yyyyMMdd'T'HHmmss'Z'`, UTC only,
    /// with the same calendar checks as ``parse(_:)``. Seconds since the epoch, or `nil`.
    public static func parseBasic(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 16, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z") else { return nil }
        func digits(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in bytes[range] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = digits(0..<4), let month = digits(4..<6), let day = digits(6..<8),
              let hour = digits(9..<11), let minute = digits(11..<13), let second = digits(13..<15),
              (1...12).contains(month), day >= 1, day <= CivilDate.daysIn(month: month, year: year),
              hour < 24, minute < 60, second <= 60 else { return nil }
        // Four-digit years keep `days` within ±3.7 million, so neither product can overflow.
        let days = CivilDate.daysSinceEpoch(year: year, month: month, day: day)
        return days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59))
    }
}

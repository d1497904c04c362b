import Foundation

/// The `timestamp` of a signed node message, kept exactly as sent.
///
/// The official installer sends Unix seconds as a JSON number; the docs show an ISO-8601 string.
/// Both are accepted (DESIGN.md §4.2). The signed text uses the value as sent: the number's
/// decimal digits, or the string verbatim.
public struct NodeTimestamp: Sendable, Equatable, Codable, CustomStringConvertible {
    /// The text that enters the signed message `ip|region|timestamp`.
    public let signedText: String
    /// The instant it denotes, for the clock-skew check.
    public let date: Date

    /// A `NodeTimestamp` from its parts.
    public init(seconds: Int64) {
        signedText = String(seconds)
        date = Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    /// Parses a string timestamp: Unix seconds in digits, or ISO-8601 with or without fractions.
    public init?(string: String) {
        if let seconds = Int64(string) {
            signedText = string
            date = Date(timeIntervalSince1970: TimeInterval(seconds))
            return
        }
        guard let parsed = NodeTimestamp.parseISO8601(string) else { return nil }
        signedText = string
        date = parsed
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Int64.self) {
            self.init(seconds: seconds)
        } else if let number = try? container.decode(Double.self) {
            guard number.isFinite, number == number.rounded(), abs(number) < 1e15 else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "timestamp must be whole Unix seconds")
            }
            self.init(seconds: Int64(number))
        } else if let text = try? container.decode(String.self), let parsed = NodeTimestamp(string: text) {
            self = parsed
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "timestamp must be Unix seconds or an ISO-8601 date-time")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let seconds = Int64(signedText) { try container.encode(seconds) } else { try container.encode(signedText) }
    }

    public var description: String { signedText }

    /// A strict ISO-8601 date-time (``CollectorModel/ISO8601``); a date alone is not a time.
    public static func parseISO8601(_ text: String) -> Date? {
        guard let parsed = ISO8601.parse(text), !parsed.dateOnly else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(parsed.seconds))
    }
}

/// A field value of the InfluxDB line protocol.
public enum FieldValue: Equatable, Sendable {
    /// `1`, `-1.5`, `2e10` (no suffix).
    case float(Double)
    /// `42i`.
    case integer(Int64)
    /// `42u`.
    case unsigned(UInt64)
    /// `"text"` with `\"` and `\\` escapes.
    case string(String)
    /// `t`, `T`, `true`, `True`, `TRUE`, `f`, `F`, `false`, `False`, `FALSE`.
    case boolean(Bool)

    /// The value as a number for rollups: booleans are 1 or 0; strings have none.
    @inlinable
    public var numericValue: Double? {
        switch self {
        case .float(let value): return value
        case .integer(let value): return Double(value)
        case .unsigned(let value): return Double(value)
        case .boolean(let value): return value ? 1 : 0
        case .string: return nil
        }
    }
}

/// One parsed line: `measurement[,tag=value…] field=value[,field=value…] [timestamp]`.
public struct LinePoint: Equatable, Sendable {
    public var measurement: String
    /// Tags sorted by key (the series identity does not depend on the order they were sent in).
    public var tags: [Tag]
    /// Fields in the order sent; a repeated key keeps its last value.
    public var fields: [Field]
    /// Nanoseconds since the Unix epoch, or `nil` when the line had none (the receiver uses now).
    public var timestamp: Int64?
    /// 1-based line number in the body or datagram.
    public var line: Int

    /// A tag key and value, unescaped.
    public struct Tag: Equatable, Sendable {
        public var key: String
        public var value: String

        /// A `Tag` from its parts.
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    /// A field key and value, unescaped.
    public struct Field: Equatable, Sendable {
        public var key: String
        public var value: FieldValue

        /// A `Field` from its parts.
        public init(_ key: String, _ value: FieldValue) {
            self.key = key
            self.value = value
        }
    }

    /// A `LinePoint` from its parts.
    public init(measurement: String, tags: [Tag], fields: [Field], timestamp: Int64?, line: Int) {
        self.measurement = measurement
        self.tags = tags
        self.fields = fields
        self.timestamp = timestamp
        self.line = line
    }

    /// The value of tag `key`, if present.
    public func tag(_ key: String) -> String? {
        tags.first { $0.key == key }?.value
    }
}

/// Why a line was rejected. The reasons are stable identifiers, used as metric labels.
public enum LineErrorReason: String, Sendable, CaseIterable {
    case missingMeasurement = "missing_measurement"
    case invalidTag = "invalid_tag"
    case tooManyTags = "too_many_tags"
    case missingFields = "missing_fields"
    case invalidField = "invalid_field"
    case invalidFieldValue = "invalid_field_value"
    case unterminatedString = "unterminated_string"
    case invalidTimestamp = "invalid_timestamp"
    case lineTooLong = "line_too_long"
    case invalidUTF8 = "invalid_utf8"
}

/// A rejected line: where and why.
public struct LineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// 1-based line number.
    public var line: Int
    public var reason: LineErrorReason
    /// Human-readable detail (what was found where).
    public var detail: String

    /// A `LineError` from its parts.
    public init(line: Int, reason: LineErrorReason, detail: String) {
        self.line = line
        self.reason = reason
        self.detail = detail
    }

    public var description: String { "line \(line): \(detail)" }
}

/// Timestamp precision of a write (`precision=` of the InfluxDB APIs).
public enum TimestampPrecision: String, Sendable, CaseIterable {
    case nanoseconds = "ns"
    case microseconds = "us"
    case milliseconds = "ms"
    case seconds = "s"

    /// Accepts the v1 and v2 spellings: `n`, `ns`, `u`, `us`, `µ`, `ms`, `s`.
    public init?(parameter: String) {
        switch parameter {
        case "n", "ns", "": self = .nanoseconds
        case "u", "us", "µ", "µs": self = .microseconds
        case "ms": self = .milliseconds
        case "s": self = .seconds
        default: return nil
        }
    }

    /// Nanoseconds per unit.
    public var nanosecondsPerUnit: Int64 {
        switch self {
        case .nanoseconds: return 1
        case .microseconds: return 1_000
        case .milliseconds: return 1_000_000
        case .seconds: return 1_000_000_000
        }
    }
}

/// The InfluxDB line protocol as a pure function over bytes: rows plus per-line errors, no I/O.
///
/// Syntax (InfluxDB 1.x/2.x): `measurement[,tag=value…] field=value[,field=value…] [timestamp]`.
/// - Measurement: `\,` and `\ ` are escapes. Tag keys and values and field keys: `\,`, `\=`, `\ `.
///   A backslash before any other character is kept as is.
/// - Field values: floats (`1`, `-1.5`, `1e3`), integers `1i`, unsigned `1u`, booleans
///   (`t/T/true/True/TRUE`, `f/F/false/False/FALSE`), strings `"…"` with `\"` and `\\` escapes,
///   which may contain newlines.
/// - Lines starting with `#` are comments; blank lines are skipped; `\r\n` endings are accepted.
/// - A missing timestamp leaves `timestamp` nil (the receiver uses its clock).
///
/// A bad line is reported with its number and reason and skipped; the other lines still parse.
public struct LineProtocolParser: Sendable {
    public var precision: TimestampPrecision
    /// Longest accepted line in bytes (`--max-line-length`).
    public var maxLineLength: Int
    /// Most tags per line (`--max-tags-per-series`).
    public var maxTags: Int
    /// Remembers parsed series sections (measurement and tags) across calls, so a series seen
    /// before costs a hash lookup instead of a parse; `nil` parses every line in full.
    public var seriesCache: SeriesSectionCache?

    public init(precision: TimestampPrecision = .nanoseconds, maxLineLength: Int = 64 * 1024, maxTags: Int = 64,
                seriesCache: SeriesSectionCache? = nil) {
        self.precision = precision
        self.maxLineLength = maxLineLength
        self.maxTags = maxTags
        self.seriesCache = seriesCache
    }

    /// The outcome of parsing one body or datagram.
    public struct Result: Sendable {
        public var points: [LinePoint] = []
        public var errors: [LineError] = []
        /// Lines that held data (not blank, not comments), accepted or not.
        public var lines = 0
    }

    /// Parses every line of `text`.
    public func parse(_ text: String) -> Result {
        var copy = text
        return copy.withUTF8 { parse(UnsafeRawBufferPointer($0)) }
    }

    /// Parses every line of `bytes`.
    /// - Parameter firstLine: the number of the first line (for datagrams after a header line).
    public func parse(_ bytes: UnsafeRawBufferPointer, firstLine: Int = 1) -> Result {
        var result = Result()
        var scanner = Scanner(bytes: bytes, line: firstLine)
        var scratch: [UInt8] = []
        var fieldKeys = FieldKeyCache()
        while !scanner.atEnd {
            scanner.skipBlank()
            if scanner.atEnd { break }
            if scanner.peek == UInt8(ascii: "\n") {
                scanner.advanceLine()
                continue
            }
            if scanner.peek == UInt8(ascii: "#") {
                scanner.skipToEndOfLine()
                scanner.advanceLine()
                continue
            }
            result.lines += 1
            let start = scanner.position
            let line = scanner.line
            do {
                var point = try parseLine(&scanner, scratch: &scratch, fieldKeys: &fieldKeys)
                point.line = line
                guard scanner.position - start <= maxLineLength else {
                    throw LineError(line: line, reason: .lineTooLong, detail: "line is longer than \(maxLineLength) bytes")
                }
                result.points.append(point)
            } catch let error as LineError {
                result.errors.append(LineError(line: line, reason: error.reason, detail: error.detail))
                scanner.position = max(scanner.position, start)
                scanner.skipToEndOfLine()
            } catch {
                result.errors.append(LineError(line: line, reason: .invalidField, detail: "\(error)"))
                scanner.skipToEndOfLine()
            }
            scanner.advanceLine()
        }
        return result
    }

    private func fail(_ reason: LineErrorReason, _ detail: String) -> LineError {
        LineError(line: 0, reason: reason, detail: detail)
    }

    private func parseLine(_ scanner: inout Scanner, scratch: inout [UInt8], fieldKeys: inout FieldKeyCache) throws -> LinePoint {
        let lineStart = scanner.position
        func checkLength() throws {
            if scanner.position - lineStart > maxLineLength {
                throw fail(.lineTooLong, "line is longer than \(maxLineLength) bytes")
            }
        }
        let measurementText: String
        var tags: [LinePoint.Tag]
        var memo: SeriesMemo?
        let section = scanner.seriesSection()
        if let section, let cache = seriesCache, let known = cache.lookup(section, scratch: &scratch) {
            (measurementText, tags, memo) = (known.measurement, known.tags, known.memo)
            scanner.position = lineStart + section.count
        } else {
            (measurementText, tags) = try parseSeriesSection(&scanner, lineStart: lineStart)
            if let section, let cache = seriesCache, scanner.position == lineStart + section.count {
                let entry = SeriesSectionCache.Entry(measurement: measurementText, tags: tags)
                cache.insert(section, entry)
                memo = entry.memo
            }
        }
        try checkLength()
        // Fields.
        guard scanner.peek == UInt8(ascii: " ") else { throw fail(.missingFields, "missing fields") }
        scanner.skipSpaces()
        if scanner.atEndOfLine { throw fail(.missingFields, "missing fields") }
        var fields: [LinePoint.Field] = []
        while true {
            guard let key = try scanner.readFieldKey(&fieldKeys), !key.isEmpty else {
                throw fail(.invalidField, "empty field key")
            }
            guard scanner.peek == UInt8(ascii: "=") else { throw fail(.invalidField, "field \(key) has no value") }
            scanner.position += 1
            let value = try parseFieldValue(&scanner, key: key)
            if let index = fields.firstIndex(where: { $0.key == key }) {
                fields[index].value = value
            } else {
                fields.append(LinePoint.Field(key, value))
            }
            try checkLength()
            if scanner.peek == UInt8(ascii: ",") {
                scanner.position += 1
                continue
            }
            break
        }
        // Timestamp.
        var timestamp: Int64?
        scanner.skipSpaces()
        if !scanner.atEndOfLine {
            let token = scanner.readRaw(until: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\t") })
            guard let value = Self.parseInteger(token) else {
                throw fail(.invalidTimestamp, "invalid timestamp \(Self.show(token))")
            }
            let (scaled, overflow) = value.multipliedReportingOverflow(by: precision.nanosecondsPerUnit)
            guard !overflow else { throw fail(.invalidTimestamp, "timestamp \(value) is out of range for precision \(precision.rawValue)") }
            timestamp = scaled
            scanner.skipSpaces()
            guard scanner.atEndOfLine else {
                throw fail(.invalidTimestamp, "unexpected text after the timestamp")
            }
        }
        try checkLength()
        var point = LinePoint(measurement: measurementText, tags: tags, fields: fields, timestamp: timestamp, line: 0)
        point.memo = memo
        return point
    }

    /// Measurement and tags (sorted by key; a repeated key keeps its last value).
    private func parseSeriesSection(_ scanner: inout Scanner, lineStart: Int) throws -> (String, [LinePoint.Tag]) {
        func checkLength() throws {
            if scanner.position - lineStart > maxLineLength {
                throw fail(.lineTooLong, "line is longer than \(maxLineLength) bytes")
            }
        }
        let measurement = try scanner.readToken(stops: .measurement, unescape: .measurement)
        try checkLength()
        guard let measurementText = measurement, !measurementText.isEmpty else {
            throw fail(.missingMeasurement, "missing measurement")
        }
        var tags: [LinePoint.Tag] = []
        while scanner.peek == UInt8(ascii: ",") {
            scanner.position += 1
            guard let key = try scanner.readToken(stops: .key, unescape: .key), !key.isEmpty else {
                throw fail(.invalidTag, "empty tag key")
            }
            guard scanner.peek == UInt8(ascii: "=") else { throw fail(.invalidTag, "tag \(key) has no value") }
            scanner.position += 1
            guard let value = try scanner.readToken(stops: .tagValue, unescape: .key), !value.isEmpty else {
                throw fail(.invalidTag, "tag \(key) has an empty value")
            }
            tags.append(LinePoint.Tag(key, value))
            guard tags.count <= maxTags else { throw fail(.tooManyTags, "more than \(maxTags) tags") }
            try checkLength()
        }
        if tags.count > 1, !zip(tags, tags.dropFirst()).allSatisfy({ $0.key < $1.key }) {
            // Stable, so that of a repeated key the last value is kept below.
            tags = tags.enumerated().sorted { ($0.element.key, $0.offset) < ($1.element.key, $1.offset) }.map(\.element)
            var unique: [LinePoint.Tag] = []
            unique.reserveCapacity(tags.count)
            for tag in tags {
                if unique.last?.key == tag.key { unique[unique.count - 1] = tag } else { unique.append(tag) }
            }
            tags = unique
        }
        return (measurementText, tags)
    }

    private func parseFieldValue(_ scanner: inout Scanner, key: String) throws -> FieldValue {
        if scanner.peek == UInt8(ascii: "\"") {
            let (position, line) = (scanner.position, scanner.line)
            scanner.position += 1
            guard let text = try scanner.readQuoted() else {
                // Resume after this physical line, not after the rest of the body.
                (scanner.position, scanner.line) = (position, line)
                throw fail(.unterminatedString, "string value of field \(key) is not terminated")
            }
            return .string(text)
        }
        let token = scanner.readRaw(until: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") })
        guard let value = Self.parseScalar(token) else {
            throw fail(.invalidFieldValue, "invalid value \(Self.show(token)) for field \(key)")
        }
        return value
    }

    static func show(_ token: UnsafeRawBufferPointer) -> String {
        let text = String(decoding: token.prefix(40), as: UTF8.self)
        return "\"\(text)\(token.count > 40 ? "…" : "")\""
    }

    /// Parses a non-string field value.
    static func parseScalar(_ token: UnsafeRawBufferPointer) -> FieldValue? {
        guard let last = token.last else { return nil }
        switch last {
        case UInt8(ascii: "i"):
            return parseInteger(UnsafeRawBufferPointer(rebasing: token.dropLast())).map(FieldValue.integer)
        case UInt8(ascii: "u"):
            return parseUnsigned(UnsafeRawBufferPointer(rebasing: token.dropLast())).map(FieldValue.unsigned)
        default:
            break
        }
        switch token.count {
        case 1:
            if last == UInt8(ascii: "t") || last == UInt8(ascii: "T") { return .boolean(true) }
            if last == UInt8(ascii: "f") || last == UInt8(ascii: "F") { return .boolean(false) }
        case 4, 5:
            let text = String(decoding: token, as: UTF8.self)
            switch text {
            case "true", "True", "TRUE": return .boolean(true)
            case "false", "False", "FALSE": return .boolean(false)
            default: break
            }
        default:
            break
        }
        return parseFloat(token).map(FieldValue.float)
    }

    /// `[-]digits`, no leading `+`, fits in Int64.
    static func parseInteger(_ token: UnsafeRawBufferPointer) -> Int64? {
        guard !token.isEmpty else { return nil }
        var index = 0
        let negative = token[0] == UInt8(ascii: "-")
        if negative { index = 1 }
        guard index < token.count else { return nil }
        var value: Int64 = 0
        while index < token.count {
            let byte = token[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = negative ? times.subtractingReportingOverflow(digit) : times.addingReportingOverflow(digit)
            guard !o1, !o2 else { return nil }
            value = next
            index += 1
        }
        return value
    }

    static func parseUnsigned(_ token: UnsafeRawBufferPointer) -> UInt64? {
        guard !token.isEmpty else { return nil }
        var value: UInt64 = 0
        for byte in token {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, o1) = value.multipliedReportingOverflow(by: 10)
            let (next, o2) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !o1, !o2 else { return nil }
            value = next
        }
        return value
    }

    /// Powers of ten that are exact in a Double.
    static let exactPowersOfTen: [Double] = (0...22).map { exponent in (0..<exponent).reduce(1.0) { value, _ in value * 10 } }

    /// `[-]digits[.digits]` with at most 15 significant digits, without allocating: the integer
    /// mantissa and the power of ten are both exact in a Double, so one division rounds
    /// correctly (Clinger's fast path). `nil` sends the token to the general parser.
    @inline(__always)
    static func parseSimpleDecimal(_ token: UnsafeRawBufferPointer) -> Double? {
        var index = 0
        let negative = token.first == UInt8(ascii: "-")
        if negative { index = 1 }
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        var seenPoint = false
        while index < token.count {
            let byte = token[index]
            if byte == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
            } else if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                mantissa = mantissa &* 10 &+ UInt64(byte &- UInt8(ascii: "0"))
                digits += 1
                if seenPoint { fractionDigits += 1 }
                guard digits <= 15 else { return nil }
            } else {
                return nil
            }
            index += 1
        }
        guard digits > 0 else { return nil }
        let magnitude = Double(mantissa) / exactPowersOfTen[fractionDigits]
        return negative ? -magnitude : magnitude
    }

    /// A decimal float in the forms InfluxDB accepts; NaN and infinities are refused.
    static func parseFloat(_ token: UnsafeRawBufferPointer) -> Double? {
        guard !token.isEmpty, token.count <= 64 else { return nil }
        if let simple = parseSimpleDecimal(token) { return simple }
        var sawDigit = false
        for (offset, byte) in token.enumerated() {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): break
            case UInt8(ascii: "-"), UInt8(ascii: "+"):
                // Signs only at the start or right after an exponent marker.
                if offset != 0 {
                    let previous = token[offset - 1]
                    guard previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return nil }
                }
            default: return nil
            }
        }
        guard sawDigit, let value = Double(String(decoding: token, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }
}

/// A cursor over one body; not thread-safe, owned by one parse call.
struct Scanner {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    var line: Int

    init(bytes: UnsafeRawBufferPointer, line: Int) {
        self.bytes = bytes
        self.line = line
    }

    var atEnd: Bool { position >= bytes.count }
    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }

    /// At `\n`, `\r\n` or the end.
    var atEndOfLine: Bool {
        guard let byte = peek else { return true }
        if byte == UInt8(ascii: "\n") { return true }
        if byte == UInt8(ascii: "\r") { return position + 1 >= bytes.count || bytes[position + 1] == UInt8(ascii: "\n") }
        return false
    }

    mutating func skipBlank() {
        while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r") { position += 1 }
    }

    mutating func skipSpaces() {
        while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { position += 1 }
    }

    /// Moves past the rest of the line (not past its `\n`).
    mutating func skipToEndOfLine() {
        while let byte = peek, byte != UInt8(ascii: "\n") { position += 1 }
    }

    /// Moves past a `\n` (or `\r\n`) if there is one and counts the line.
    mutating func advanceLine() {
        if peek == UInt8(ascii: "\r"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "\n") { position += 1 }
        if peek == UInt8(ascii: "\n") { position += 1 }
        line += 1
    }

    /// Which bytes end a token.
    enum Stops {
        /// Measurement: `,` and space.
        case measurement
        /// Tag and field keys: `,`, `=` and space.
        case key
        /// Tag values: `,` and space (`=` is allowed unescaped, as in InfluxDB).
        case tagValue

        @inline(__always)
        func contains(_ byte: UInt8) -> Bool {
            switch self {
            case .measurement: return byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ")
            case .key: return byte == UInt8(ascii: ",") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: " ")
            case .tagValue: return byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ")
            }
        }
    }

    /// Which escapes are removed.
    enum Unescape {
        case measurement
        case key

        @inline(__always)
        func removes(_ byte: UInt8) -> Bool {
            switch self {
            case .measurement: return byte == UInt8(ascii: ",") || byte == UInt8(ascii: " ")
            case .key: return byte == UInt8(ascii: ",") || byte == UInt8(ascii: "=") || byte == UInt8(ascii: " ")
            }
        }
    }

    /// The bytes from here to the first unescaped space of the line (measurement and tags as
    /// sent), or `nil` when the line ends first. Does not move.
    func seriesSection() -> UnsafeRawBufferPointer? {
        var index = position
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\\") {
                index += 2
                continue
            }
            if byte == UInt8(ascii: " ") { return UnsafeRawBufferPointer(rebasing: bytes[position..<index]) }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { return nil }
            index += 1
        }
        return nil
    }

    /// A field key: like `readToken(stops: .key, unescape: .key)`, but an unescaped key seen
    /// before in this body is returned from `cache` instead of becoming a new string.
    mutating func readFieldKey(_ cache: inout FieldKeyCache) throws -> String? {
        let start = position
        while let byte = peek {
            if byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { break }
            if Stops.key.contains(byte) { break }
            position += 1
        }
        let stop = peek
        if stop == UInt8(ascii: "\\") || stop == UInt8(ascii: "\r") {
            // Escapes or a carriage return: the general path decides.
            position = start
            return try readToken(stops: .key, unescape: .key)
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        if let known = cache.name(raw) { return known }
        guard let text = makeString(raw) else {
            throw LineError(line: 0, reason: .invalidUTF8, detail: "invalid UTF-8")
        }
        cache.insert(raw, text)
        return text
    }

    /// Reads up to an unescaped stop byte, a line end or the end; `nil` for invalid UTF-8.
    mutating func readToken(stops: Stops, unescape: Unescape) throws -> String? {
        let start = position
        var escaped = false
        while let byte = peek {
            if byte == UInt8(ascii: "\n") || (byte == UInt8(ascii: "\r") && atEndOfLine) { break }
            if byte == UInt8(ascii: "\\"), position + 1 < bytes.count {
                escaped = true
                position += 2
                continue
            }
            if stops.contains(byte) { break }
            position += 1
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        if !escaped {
            guard let text = makeString(raw) else {
                throw LineError(line: 0, reason: .invalidUTF8, detail: "invalid UTF-8")
            }
            return text
        }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            if byte == UInt8(ascii: "\\"), index + 1 < raw.count, unescape.removes(raw[index + 1]) {
                out.append(raw[index + 1])
                index += 2
            } else {
                out.append(byte)
                index += 1
            }
        }
        guard let text = out.withUnsafeBytes({ makeString($0) }) else {
            throw LineError(line: 0, reason: .invalidUTF8, detail: "invalid UTF-8")
        }
        return text
    }

    /// A string from UTF-8 bytes, or `nil` when they are not valid UTF-8. ASCII (nearly every
    /// measurement, tag and field name) takes a fast path: 8 bytes per check, no generic
    /// validation.
    @inline(__always)
    func makeString(_ raw: UnsafeRawBufferPointer) -> String? {
        var index = 0
        var high: UInt64 = 0
        while index + 8 <= raw.count {
            high |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < raw.count {
            high |= UInt64(raw[index])
            index += 1
        }
        if high & 0x8080_8080_8080_8080 == 0 { return String(decoding: raw, as: UTF8.self) }
        return String(validating: raw, as: UTF8.self)
    }

    /// Reads a quoted string body after the opening quote; `nil` when it never closes.
    /// Counts the newlines inside it as lines.
    mutating func readQuoted() throws -> String? {
        var out: [UInt8] = []
        while let byte = peek {
            if byte == UInt8(ascii: "\\"), position + 1 < bytes.count,
               bytes[position + 1] == UInt8(ascii: "\"") || bytes[position + 1] == UInt8(ascii: "\\") {
                out.append(bytes[position + 1])
                position += 2
                continue
            }
            if byte == UInt8(ascii: "\"") {
                position += 1
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw LineError(line: 0, reason: .invalidUTF8, detail: "invalid UTF-8")
                }
                return text
            }
            if byte == UInt8(ascii: "\n") { line += 1 }
            out.append(byte)
            position += 1
        }
        return nil
    }

    /// Reads raw bytes until `stop` matches.
    mutating func readRaw(until stop: (UInt8) -> Bool) -> UnsafeRawBufferPointer {
        let start = position
        while let byte = peek, !stop(byte) { position += 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<position])
    }
}

/// The field keys of one body (a handful, repeated on every line), so that each is made into a
/// string once per body rather than once per line.
struct FieldKeyCache {
    private var keys: [(bytes: [UInt8], name: String)] = []

    func name(_ raw: UnsafeRawBufferPointer) -> String? {
        for key in keys where key.bytes.count == raw.count {
            if key.bytes.withUnsafeBytes({ $0.elementsEqual(raw) }) { return key.name }
        }
        return nil
    }

    mutating func insert(_ raw: UnsafeRawBufferPointer, _ name: String) {
        guard keys.count < 32 else { return }
        keys.append((Array(raw), name))
    }
}

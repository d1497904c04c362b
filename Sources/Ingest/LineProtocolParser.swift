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
    /// Longest line by default: 64 KiB.
    public static let defaultMaxLineLength = 64 * 1024
    /// Most tags per line by default.
    public static let defaultMaxTags = 64

    public var precision: TimestampPrecision
    /// Longest accepted line in bytes (`--max-line-length`).
    public var maxLineLength: Int
    /// Most tags per line (`--max-tags-per-series`).
    public var maxTags: Int
    /// Remembers parsed series sections (measurement and tags) across calls, so a series seen
    /// before costs a hash lookup instead of a parse; `nil` parses every line in full.
    public var seriesCache: SeriesSectionCache?
    /// With a `seriesCache`: expect each body to list its series in the order the last body
    /// with the same first series did (a sender's next report), checking the bytes of the
    /// expected section before hashing; the body's order is remembered for the next one.
    /// For whole bodies (HTTP); the results are exactly those without it.
    public var followsSenderOrder: Bool

    /// A parser with the given timestamp precision and limits; `seriesCache` shares parsed series sections across calls.
    public init(precision: TimestampPrecision = .nanoseconds, maxLineLength: Int = defaultMaxLineLength, maxTags: Int = defaultMaxTags,
                seriesCache: SeriesSectionCache? = nil, followsSenderOrder: Bool = false) {
        self.precision = precision
        self.maxLineLength = maxLineLength
        self.maxTags = maxTags
        self.seriesCache = seriesCache
        self.followsSenderOrder = followsSenderOrder
    }

    /// The outcome of parsing one body or datagram, in columns: per accepted line a row and its
    /// series section, and the fields of all lines in one array, so that a line costs no
    /// allocation of its own once its series section is cached.
    public struct Result: Sendable {
        /// One accepted line.
        public struct Row: Sendable {
            /// 1-based line number in the body or datagram.
            public var line: Int
            /// Nanoseconds since the Unix epoch, or `nil` when the line had none.
            public var timestamp: Int64?
            /// The line's fields: `fields[fieldStart..<fieldEnd]`, in the order sent, a repeated
            /// key keeping its last value.
            public var fieldStart: Int32
            public var fieldEnd: Int32

            @inlinable
            public var fieldRange: Range<Int> { Int(fieldStart)..<Int(fieldEnd) }
        }

        /// One field of one line; `key` indexes `fieldKeys`.
        public struct Field: Sendable {
            public var key: Int32
            public var value: FieldValue
        }

        public var rows: [Row] = []
        /// The series section of each row (parallel to `rows`).
        public var sections: [SeriesSection] = []
        public var fields: [Field] = []
        /// The distinct field keys of the body.
        public var fieldKeys: [String] = []
        public var errors: [LineError] = []
        /// Lines that held data (not blank, not comments), accepted or not.
        public var lines = 0

        /// The accepted lines as values (tests and simple callers; the ingest path reads the
        /// columns).
        public var points: [LinePoint] {
            zip(rows, sections).map { row, section in
                LinePoint(measurement: section.measurement, tags: section.tags,
                          fields: fields[row.fieldRange].map { LinePoint.Field(fieldKeys[Int($0.key)], $0.value) },
                          timestamp: row.timestamp, line: row.line)
            }
        }
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
        var fieldKeys = FieldKeyTable()
        // The sender's order (see `followsSenderOrder`): fetched after the first accepted line.
        var order: [SeriesSection]?
        var expected = 1
        var followed = 0
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
            let fieldStart = result.fields.count
            do {
                let predicted = order.flatMap { expected < $0.count ? $0[expected] : nil }
                expected += order == nil ? 0 : 1
                let (section, timestamp) = try parseLine(&scanner, predicted: predicted, scratch: &scratch, fieldKeys: &fieldKeys,
                                                         fields: &result.fields)
                if let predicted, section === predicted { followed += 1 }
                guard scanner.position - start <= maxLineLength else {
                    throw LineError(line: line, reason: .lineTooLong, detail: "line is longer than \(maxLineLength) bytes")
                }
                result.rows.append(Result.Row(line: line, timestamp: timestamp, fieldStart: Int32(fieldStart), fieldEnd: Int32(result.fields.count)))
                result.sections.append(section)
                if order == nil, followsSenderOrder, let cache = seriesCache {
                    order = cache.order(startingWith: section) ?? []
                }
            } catch let error as LineError {
                result.fields.removeSubrange(fieldStart...)
                result.errors.append(LineError(line: line, reason: error.reason, detail: error.detail))
                scanner.position = max(scanner.position, start)
                scanner.skipToEndOfLine()
            } catch {
                result.fields.removeSubrange(fieldStart...)
                result.errors.append(LineError(line: line, reason: .invalidField, detail: "\(error)"))
                scanner.skipToEndOfLine()
            }
            scanner.advanceLine()
        }
        result.fieldKeys = fieldKeys.names
        if let order, let cache = seriesCache, followed + 1 != result.sections.count || order.count != result.sections.count {
            cache.rememberOrder(result.sections)
        }
        return result
    }

    private func fail(_ reason: LineErrorReason, _ detail: String) -> LineError {
        LineError(line: 0, reason: reason, detail: detail)
    }

    /// Parses one line, appending its fields to `fields`; returns its series section and time.
    /// `predicted`: the section the sender's order expects here, taken when its bytes are the
    /// line's series section (what the cache would find by hashing them).
    private func parseLine(_ scanner: inout Scanner, predicted: SeriesSection?, scratch: inout [UInt8], fieldKeys: inout FieldKeyTable,
                           fields: inout [Result.Field]) throws -> (SeriesSection, Int64?) {
        let lineStart = scanner.position
        func checkLength() throws {
            if scanner.position - lineStart > maxLineLength {
                throw fail(.lineTooLong, "line is longer than \(maxLineLength) bytes")
            }
        }
        let section: SeriesSection
        if let predicted, scanner.startsWithSeriesSection(predicted.raw) {
            section = predicted
            scanner.position = lineStart + predicted.raw.count
        } else if let raw = scanner.seriesSection(), let cache = seriesCache {
            if let known = cache.lookup(raw, scratch: &scratch) {
                section = known
                scanner.position = lineStart + raw.count
            } else {
                let (measurement, tags) = try parseSeriesSection(&scanner, lineStart: lineStart)
                // Cached (and matched by its bytes later) only when the section parsed whole.
                let whole = scanner.position == lineStart + raw.count
                section = cache.sectionType.init(measurement: measurement, tags: tags, raw: whole ? Array(raw) : [])
                if whole { cache.insert(raw, section) }
            }
        } else {
            let (measurement, tags) = try parseSeriesSection(&scanner, lineStart: lineStart)
            section = (seriesCache?.sectionType ?? SeriesSection.self).init(measurement: measurement, tags: tags)
        }
        try checkLength()
        // Fields.
        guard scanner.peek == UInt8(ascii: " ") else { throw fail(.missingFields, "missing fields") }
        scanner.skipSpaces()
        if scanner.atEndOfLine { throw fail(.missingFields, "missing fields") }
        let first = fields.count
        while true {
            guard let key = try scanner.readFieldKey(&fieldKeys) else {
                throw fail(.invalidField, "empty field key")
            }
            guard scanner.peek == UInt8(ascii: "=") else { throw fail(.invalidField, "field \(fieldKeys.names[Int(key)]) has no value") }
            scanner.position += 1
            let value = try parseFieldValue(&scanner, key: key, keys: fieldKeys)
            var index = first
            while index < fields.count, fields[index].key != key { index += 1 }
            if index < fields.count {
                fields[index].value = value
            } else {
                fields.append(Result.Field(key: key, value: value))
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
        return (section, timestamp)
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

    private func parseFieldValue(_ scanner: inout Scanner, key index: Int32, keys: FieldKeyTable) throws -> FieldValue {
        // The key's name only for messages: no string copy per value.
        var key: String { keys.names[Int(index)] }
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
            // Only a word starting with t or f can be a boolean: numbers make no string here.
            guard let first = token.first, first | 0x20 == UInt8(ascii: "t") || first | 0x20 == UInt8(ascii: "f") else { break }
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

    /// Whether ``seriesSection()`` is `section` (non-empty): the bytes from here are `section`
    /// followed by a space. The same scan over the same bytes stops at the same space, so no
    /// escape needs a look. Does not move.
    @inline(__always)
    func startsWithSeriesSection(_ section: [UInt8]) -> Bool {
        let count = section.count
        guard count > 0, bytes.count - position > count, bytes[position + count] == UInt8(ascii: " ") else { return false }
        return section.withUnsafeBytes { sameBytes(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + count)]), $0) }
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

    /// A field key as an index into `table`: like `readToken(stops: .key, unescape: .key)`,
    /// but an unescaped key seen before in this body is found by its bytes instead of becoming
    /// a new string. `nil` for an empty key.
    mutating func readFieldKey(_ table: inout FieldKeyTable) throws -> Int32? {
        // A key of this body seen before, followed by `=`: the scan below would stop at that
        // `=` (such keys hold no stop byte) and find the same key.
        if let (index, length) = table.match(bytes, at: position) {
            position += length
            return index
        }
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
            guard let text = try readToken(stops: .key, unescape: .key), !text.isEmpty else { return nil }
            return table.index(of: text, raw: nil)
        }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
        guard !raw.isEmpty else { return nil }
        if let known = table.index(raw) { return known }
        guard let text = makeString(raw) else {
            throw LineError(line: 0, reason: .invalidUTF8, detail: "invalid UTF-8")
        }
        return table.index(of: text, raw: raw)
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
/// string once per body rather than once per line, and a line refers to it by index.
struct FieldKeyTable {
    private(set) var names: [String] = []
    private var byName: [String: Int32] = [:]
    /// The raw bytes of the first unescaped keys, searched before any string is made.
    private var recent: [(bytes: [UInt8], index: Int32)] = []

    /// Where the next key is looked for first: after the last one matched (lines repeat their
    /// fields in the same order).
    private var next = 0

    func index(_ raw: UnsafeRawBufferPointer) -> Int32? {
        for key in recent where key.bytes.count == raw.count {
            if key.bytes.withUnsafeBytes({ sameBytes($0, raw) }) { return key.index }
        }
        return nil
    }

    /// The index and length of the unescaped key seen before that `bytes` holds at `position`,
    /// followed by `=`.
    mutating func match(_ bytes: UnsafeRawBufferPointer, at position: Int) -> (Int32, Int)? {
        let available = bytes.count - position
        for step in 0..<recent.count {
            let slot = (next + step) % recent.count
            let length = recent[slot].bytes.count
            guard length < available, bytes[position + length] == UInt8(ascii: "=") else { continue }
            let matched = recent[slot].bytes.withUnsafeBytes { sameBytes(UnsafeRawBufferPointer(rebasing: bytes[position..<(position + length)]), $0) }
            if matched {
                next = slot + 1 == recent.count ? 0 : slot + 1
                return (recent[slot].index, length)
            }
        }
        return nil
    }

    mutating func index(of name: String, raw: UnsafeRawBufferPointer?) -> Int32 {
        let index: Int32
        if let known = byName[name] {
            index = known
        } else {
            index = Int32(names.count)
            names.append(name)
            byName[name] = index
        }
        if let raw, recent.count < 32 { recent.append((Array(raw), index)) }
        return index
    }
}

/// Whether `a` and `b` (of the same length) hold the same bytes, compared eight at a time.
@inline(__always)
func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let count = a.count
    guard b.count == count else { return false }
    var offset = 0
    while offset + 8 <= count {
        guard a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) == b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
        offset += 8
    }
    while offset < count {
        guard a[offset] == b[offset] else { return false }
        offset += 1
    }
    return true
}

import Foundation
import Ingest
import Testing

/// The parser against fixture files: every accepted form and escape (valid.lp) and every
/// rejection reason (invalid.lp), each annotated in the file itself.
@Suite("Line protocol parser")
struct LineProtocolParserTests {
    static func fixture(_ name: String) throws -> [UInt8] {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"))
        return Array(try Data(contentsOf: url))
    }

    /// A `# =>` annotation.
    struct Expected: Decodable {
        var measurement: String
        var tags: [String: String]
        var fields: [String: Value]
        var timestamp: Int64?

        enum Value: Decodable, Equatable {
            case float(Double), integer(Int64), unsigned(UInt64), string(String), boolean(Bool)

            enum Key: String, CodingKey { case float, integer, unsigned, string, boolean }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Key.self)
                if let value = try container.decodeIfPresent(Double.self, forKey: .float) { self = .float(value) }
                else if let value = try container.decodeIfPresent(Int64.self, forKey: .integer) { self = .integer(value) }
                else if let value = try container.decodeIfPresent(UInt64.self, forKey: .unsigned) { self = .unsigned(value) }
                else if let value = try container.decodeIfPresent(String.self, forKey: .string) { self = .string(value) }
                else { self = .boolean(try container.decode(Bool.self, forKey: .boolean)) }
            }

            var fieldValue: FieldValue {
                switch self {
                case .float(let v): return .float(v)
                case .integer(let v): return .integer(v)
                case .unsigned(let v): return .unsigned(v)
                case .string(let v): return .string(v)
                case .boolean(let v): return .boolean(v)
                }
            }
        }
    }

    /// Splits a fixture into its physical lines (by `\n` only) to read the annotations.
    static func lines(_ bytes: [UInt8]) -> [String] {
        bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func everyValidFormParsesAsAnnotated() throws {
        let bytes = try Self.fixture("valid.lp")
        let result = bytes.withUnsafeBytes { LineProtocolParser().parse($0) }
        #expect(result.errors.isEmpty, "\(result.errors)")
        let lines = Self.lines(bytes)
        var expectations: [(line: Int, point: Expected)] = []
        for (index, text) in lines.enumerated() where text.hasPrefix("# => ") {
            expectations.append((index + 2, try JSONDecoder().decode(Expected.self, from: Data(text.dropFirst(5).utf8))))
        }
        #expect(expectations.count == 12)
        #expect(result.points.count == expectations.count)
        for (line, expected) in expectations {
            guard let point = result.points.first(where: { $0.line == line }) else {
                Issue.record("no point parsed from line \(line)")
                continue
            }
            #expect(point.measurement == expected.measurement, "line \(line)")
            #expect(point.tags.map(\.key) == point.tags.map(\.key).sorted(), "line \(line): tags not sorted")
            #expect(Dictionary(uniqueKeysWithValues: point.tags.map { ($0.key, $0.value) }) == expected.tags, "line \(line)")
            #expect(Dictionary(uniqueKeysWithValues: point.fields.map { ($0.key, $0.value) }) == expected.fields.mapValues(\.fieldValue), "line \(line)")
            #expect(point.timestamp == expected.timestamp, "line \(line)")
        }
    }

    @Test func everyRejectionReasonIsReportedAndGoodLinesSurvive() throws {
        let bytes = try Self.fixture("invalid.lp")
        let parser = LineProtocolParser(precision: .nanoseconds, maxLineLength: 200, maxTags: 3)
        let result = bytes.withUnsafeBytes { parser.parse($0) }
        let lines = Self.lines(bytes)
        var expected: [Int: String] = [:]
        for (index, text) in lines.enumerated() where text.hasPrefix("# expect: ") {
            expected[index + 2] = String(text.dropFirst("# expect: ".count))
        }
        let reported = Dictionary(uniqueKeysWithValues: result.errors.map { ($0.line, $0.reason.rawValue) })
        #expect(reported == expected, "reported \(reported.sorted { $0.key < $1.key })")
        #expect(Set(result.errors.map(\.reason)) == Set(LineErrorReason.allCases), "a reason has no fixture line")
        #expect(result.points.map(\.measurement) == ["good", "good", "good"])
        #expect(result.points.map(\.timestamp) == [1, 2, 3])
        #expect(result.lines == result.points.count + result.errors.count)
        for error in result.errors { #expect(error.description.hasPrefix("line \(error.line): ")) }
    }

    @Test func precisionScalesTimestamps() {
        for (precision, factor) in [(TimestampPrecision.seconds, Int64(1_000_000_000)), (.milliseconds, 1_000_000), (.microseconds, 1_000), (.nanoseconds, 1)] {
            let result = LineProtocolParser(precision: precision).parse("m v=1 1760000000\n")
            #expect(result.points.first?.timestamp == 1_760_000_000 * factor)
        }
        #expect(TimestampPrecision(parameter: "n") == .nanoseconds)
        #expect(TimestampPrecision(parameter: "u") == .microseconds)
        #expect(TimestampPrecision(parameter: "h") == nil)
        // Out of range once scaled.
        let overflow = LineProtocolParser(precision: .seconds).parse("m v=1 9223372036854775807")
        #expect(overflow.errors.first?.reason == .invalidTimestamp)
    }

    @Test func quotedStringsMaySpanLinesAndCountThem() {
        let result = LineProtocolParser().parse("m s=\"first\nsecond\" 1\nm v=2 2\nbad\n")
        #expect(result.points.count == 2)
        #expect(result.points.first?.fields.first?.value == .string("first\nsecond"))
        #expect(result.points.last?.line == 3)
        #expect(result.errors.first?.line == 4)
    }

    @Test func commentsBlankLinesAndEmptyBodies() {
        #expect(LineProtocolParser().parse("").points.isEmpty)
        let result = LineProtocolParser().parse("\n\n   \n# comment v=1\n\t# indented comment\nm v=1\n")
        #expect(result.points.count == 1)
        #expect(result.points.first?.line == 6)
        #expect(result.lines == 1)
    }

    /// Random bytes and random mutations of valid lines never trap, and every reported line
    /// number lies inside the input.
    @Test func arbitraryBytesNeverTrap() {
        var generator = SystemRandomNumberGenerator()
        let seeds = ["node_status,node=n1,bucket=b1 status=1i,latency_ms=12.5 1760000000000000000",
                     "m\\ x,t\\=1=v\\,2 s=\"q\\\"\\\\\",b=t,u=1u -1", "a b=1"]
        let alphabet = Array(" ,=\\\"\n\r#0123456789.eE-+iutfTFabc\u{00}\u{FF}".utf8)
        for _ in 0..<3000 {
            var bytes = Array(seeds.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                let index = Int.random(in: 0...bytes.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: bytes.insert(alphabet.randomElement(using: &generator)!, at: index)
                case 1: if index < bytes.count { bytes.remove(at: index) }
                default: if index < bytes.count { bytes[index] = UInt8.random(in: 0...255, using: &generator) }
                }
            }
            let lineCount = bytes.filter { $0 == UInt8(ascii: "\n") }.count + 1
            let result = bytes.withUnsafeBytes { LineProtocolParser(maxLineLength: 64, maxTags: 2).parse($0) }
            for error in result.errors { #expect((1...lineCount).contains(error.line)) }
            for point in result.points { #expect((1...lineCount).contains(point.line)) }
        }
    }

    /// With a shared series-section cache, every input parses exactly as without one: the
    /// fixtures, twice through the same cache (the second time from the cache), and random
    /// mutations of valid lines mixed with their originals.
    @Test func theSeriesSectionCacheChangesNothing() throws {
        let cache = SeriesSectionCache()
        for name in ["valid.lp", "invalid.lp"] {
            let bytes = try Self.fixture(name)
            let plain = bytes.withUnsafeBytes { LineProtocolParser().parse($0) }
            for _ in 0..<2 {
                let cached = bytes.withUnsafeBytes { LineProtocolParser(seriesCache: cache).parse($0) }
                #expect(cached.points == plain.points)
                #expect(cached.errors == plain.errors)
                #expect(cached.lines == plain.lines)
            }
        }
        #expect(cache.count > 0)
        var generator = SystemRandomNumberGenerator()
        let seeds = ["node_status,node=n1,bucket=b1 status=1i,latency_ms=12.5 1760000000000000000",
                     "m\\ x,z=1,a\\=1=v\\,2,a\\=1=w s=\"q\\\"\\\\\",b=t,u=1u -1", "a b=1", "cpu,b=2,a=1,b=3 v=1"]
        let alphabet = Array(" ,=\\\"\n\r#0123456789.eE-+iutfTFabc".utf8)
        let small = SeriesSectionCache(capacity: 8)
        for _ in 0..<2000 {
            var bytes = Array(seeds.randomElement(using: &generator)!.utf8)
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                let index = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[index] = alphabet.randomElement(using: &generator)!
            }
            let plain = bytes.withUnsafeBytes { LineProtocolParser(maxTags: 2).parse($0) }
            let cached = bytes.withUnsafeBytes { LineProtocolParser(maxTags: 2, seriesCache: small).parse($0) }
            #expect(cached.points == plain.points, "\(String(decoding: bytes, as: UTF8.self))")
            #expect(cached.errors == plain.errors, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(small.count <= 8)
    }

    /// Following a sender's order changes no result: a body repeated, then with a line changed,
    /// one inserted and one removed, sections that are prefixes of each other or end in escapes,
    /// refused lines; each parses exactly as without a cache, and the order of the last body
    /// is remembered for the next one starting with the same section. Random bodies of mutated
    /// lines, each parsed twice through a small shared cache, agree with the plain parse too.
    @Test func followingTheSendersOrderChangesNothing() throws {
        let cache = SeriesSectionCache()
        let base = (0..<50).map { "m,node=n\($0 % 5),bucket=b\($0) v=\($0)i 1760000000000000000" }
        var changed = base
        changed[10] = "m,node=n0,bucket=b10x v=1i 1"
        var inserted = base
        inserted.insert("m,node=n1,bucket=new v=2 3", at: 20)
        var removed = base
        removed.remove(at: 30)
        let tricky = ["m,a=b v=1", "m,a=bc v=2", "m,a=b\\ c v=3", "m,a=b\\\\ v=4", "m,a=b v=5 6 7", "bad line", "m,a=b\\", "m,a=b v=1"]
        let reordered = ["m,a=b v=1", "m,a=b\\\\ v=4", "m,a=bc v=2", "m,a=b\\ c v=3", "m,a=b\\ c  v=3", "m,a=b"]
        for body in [base, base, changed, base, inserted, removed, base, tricky, tricky, reordered, tricky] {
            let bytes = Array(body.joined(separator: "\n").utf8)
            let plain = bytes.withUnsafeBytes { LineProtocolParser().parse($0) }
            let followed = bytes.withUnsafeBytes { LineProtocolParser(seriesCache: cache, followsSenderOrder: true).parse($0) }
            #expect(followed.points == plain.points, "\(body)")
            #expect(followed.errors == plain.errors, "\(body)")
            #expect(followed.lines == plain.lines)
            let order = try #require(cache.order(startingWith: followed.sections[0]))
            #expect(order.count == followed.sections.count && zip(order, followed.sections).allSatisfy { $0 === $1 })
        }

        var generator = SystemRandomNumberGenerator()
        let seeds = ["node_status,node=n1,bucket=b1 status=1i,latency_ms=12.5 1760000000000000000",
                     "m\\ x,z=1,a\\=1=v\\,2,a\\=1=w s=\"q\\\"\\\\\",b=t,u=1u -1", "a b=1", "cpu,b=2,a=1,b=3 v=1", "a,b=c\\\\ v=1"]
        let alphabet = Array(" ,=\\\"\n\r#0123456789.eE-+iutfTFabc".utf8)
        let small = SeriesSectionCache(capacity: 8)
        for _ in 0..<500 {
            var lines = (0..<Int.random(in: 1...6, using: &generator)).map { _ in Array(seeds.randomElement(using: &generator)!.utf8) }
            for _ in 0..<Int.random(in: 0...3, using: &generator) {
                let line = Int.random(in: 0..<lines.count, using: &generator)
                lines[line][Int.random(in: 0..<lines[line].count, using: &generator)] = alphabet.randomElement(using: &generator)!
            }
            let bytes = Array(lines.joined(separator: [UInt8(ascii: "\n")]))
            let plain = bytes.withUnsafeBytes { LineProtocolParser(maxTags: 2).parse($0) }
            for _ in 0..<2 {
                let followed = bytes.withUnsafeBytes { LineProtocolParser(maxTags: 2, seriesCache: small, followsSenderOrder: true).parse($0) }
                #expect(followed.points == plain.points, "\(String(decoding: bytes, as: UTF8.self))")
                #expect(followed.errors == plain.errors, "\(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }

    /// The allocation-free decimal path gives exactly the value of the general parser.
    @Test func fastDecimalsAreCorrectlyRounded() {
        var generator = SystemRandomNumberGenerator()
        var texts = ["0", "-0", "0.1", "-0.1", "98.9", "123456789012345", "0.000000000000001", "1.7976931348623", "999999999999999.", ".5", "5."]
        for _ in 0..<20_000 {
            let digits = Int.random(in: 1...15, using: &generator)
            var text = String((0..<digits).map { _ in Character(String(Int.random(in: 0...9, using: &generator))) })
            let point = Int.random(in: 0...digits, using: &generator)
            text.insert(".", at: text.index(text.startIndex, offsetBy: point))
            texts.append(Bool.random(using: &generator) ? "-" + text : text)
        }
        for text in texts {
            let parsed = LineProtocolParser().parse("m v=\(text)")
            let expected = Double(text)
            #expect(parsed.points.first?.fields.first?.value == expected.map(FieldValue.float), "\(text)")
        }
    }
}

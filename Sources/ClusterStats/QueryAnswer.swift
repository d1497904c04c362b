import Foundation
import Stats

/// A Prometheus query API answer (`/api/v1/query`, `/api/v1/query_range`) read in one pass over
/// its bytes: each result series' labels (without `__name__`) and its points. Foundation's
/// `JSONSerialization` builds an object per value and took most of a stats request's time on
/// answers of 10,000 series; this reads only the shape the API documents and skips anything else.
/// Hostile bytes (a proxy's error page, a truncated body) throw ``StatsSourceError/malformed(_:)``.
struct QueryAnswer {
    struct Series {
        /// Without `__name__` and the part label.
        var labels: [String: String]
        /// (time in seconds, value) pairs: one for an instant query, one per step for a range.
        var points: [(Double, Double)]
        /// The part of a combined query it answers (``PrometheusRollupSource/partLabel``).
        var part: Int?
        /// The labels as one comparable string (``PrometheusRollupSource/canonical(_:)``).
        var canonical = ""
        /// The source's id of the series, where it was resolved (answers kept for reuse are).
        var id: UInt64? = nil
    }

    var series: [Series] = []

    /// About the memory it takes: what ``AnswerMemo`` budgets by.
    var estimatedBytes: Int {
        series.reduce(64) { total, one in total + 96 + one.canonical.utf8.count + one.labels.count * 64 + one.points.count * 16 }
    }

    init(series: [Series]) {
        self.series = series
    }

    /// Reads `bytes`; `what` names the request in errors.
    init(_ bytes: UnsafeRawBufferPointer, what: String) throws {
        var reader = Reader(bytes: bytes, what: what)
        var status: String?
        try reader.object { key, reader in
            switch key {
            case "status": status = try reader.string()
            case "data":
                try reader.object { key, reader in
                    guard key == "result" else { return try reader.skip() }
                    try reader.array { reader in series.append(try Self.series(&reader)) }
                }
            default: try reader.skip()
            }
        }
        guard status == "success" else { throw StatsSourceError.malformed("\(what) (status \(status ?? "missing"))") }
    }

    private static func series(_ reader: inout Reader) throws -> Series {
        var out = Series(labels: [:], points: [], part: nil)
        try reader.object { key, reader in
            switch key {
            case "metric":
                try reader.object { name, reader in
                    let value = try reader.string()
                    if name != "__name__" { out.labels[name] = value }
                }
            case "value": out.points.append(try point(&reader))
            case "values": try reader.array { reader in out.points.append(try point(&reader)) }
            default: try reader.skip()
            }
        }
        out.part = out.labels.removeValue(forKey: PrometheusRollupSource.partLabel).flatMap { Int($0) }
        out.canonical = PrometheusRollupSource.canonical(out.labels)
        return out
    }

    /// `[time, "value"]`.
    private static func point(_ reader: inout Reader) throws -> (Double, Double) {
        var time: Double?
        var value: Double?
        try reader.array { reader in
            if time == nil {
                time = try reader.number()
            } else if value == nil {
                let text = try reader.string()
                // Prometheus writes non-finite values as "NaN", "+Inf", "-Inf".
                value = Double(text) ?? (text == "+Inf" ? .infinity : text == "-Inf" ? -.infinity : nil)
                guard value != nil else { throw reader.malformed("point value \(text.prefix(40))") }
            } else {
                try reader.skip()
            }
        }
        guard let time, let value else { throw reader.malformed("point") }
        return (time, value)
    }

    /// A cursor over JSON bytes with just what the answer needs.
    struct Reader {
        let bytes: UnsafeRawBufferPointer
        let what: String
        var position = 0

        func malformed(_ detail: String) -> StatsSourceError {
            .malformed("\(what) (\(detail) at byte \(position))")
        }

        mutating func skipSpace() {
            while position < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            skipSpace()
            guard position < bytes.count, bytes[position] == byte else { throw malformed("expected \(Character(Unicode.Scalar(byte)))") }
            position += 1
        }

        /// Whether the next byte is `byte` (consumed when it is).
        mutating func next(is byte: UInt8) -> Bool {
            skipSpace()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        mutating func object(_ member: (String, inout Reader) throws -> Void) throws {
            try expect(UInt8(ascii: "{"))
            if next(is: UInt8(ascii: "}")) { return }
            repeat {
                let key = try string()
                try expect(UInt8(ascii: ":"))
                try member(key, &self)
            } while next(is: UInt8(ascii: ","))
            try expect(UInt8(ascii: "}"))
        }

        mutating func array(_ element: (inout Reader) throws -> Void) throws {
            try expect(UInt8(ascii: "["))
            if next(is: UInt8(ascii: "]")) { return }
            repeat { try element(&self) } while next(is: UInt8(ascii: ","))
            try expect(UInt8(ascii: "]"))
        }

        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            let start = position
            // The common case: no escapes, one copy.
            while position < bytes.count, bytes[position] != UInt8(ascii: "\""), bytes[position] != UInt8(ascii: "\\") { position += 1 }
            guard position < bytes.count else { throw malformed("unterminated string") }
            if bytes[position] == UInt8(ascii: "\"") {
                defer { position += 1 }
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            }
            var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
            while position < bytes.count {
                let byte = bytes[position]
                position += 1
                if byte == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
                guard byte == UInt8(ascii: "\\") else {
                    out.append(byte)
                    continue
                }
                guard position < bytes.count else { break }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    // A surrogate pair: a high surrogate then `\uDC00`…`\uDFFF`.
                    if (0xD800..<0xDC00).contains(scalar), position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        position += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw malformed("lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8))
                default: out.append(escaped)
                }
            }
            throw malformed("unterminated string")
        }

        private mutating func hex4() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw malformed("short \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[position]
                position += 1
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw malformed("bad \\u escape")
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }

        mutating func number() throws -> Double {
            skipSpace()
            let start = position
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"):
                    position += 1
                    continue
                default: break
                }
                break
            }
            guard position > start, position - start < 64,
                  let value = Double(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)) else {
                throw malformed("number")
            }
            return value
        }

        /// Skips any value, nested at most 64 deep.
        mutating func skip(depth: Int = 0) throws {
            guard depth < 64 else { throw malformed("nesting") }
            skipSpace()
            guard position < bytes.count else { throw malformed("value") }
            switch bytes[position] {
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "{"): try object { _, reader in try reader.skip(depth: depth + 1) }
            case UInt8(ascii: "["): try array { reader in try reader.skip(depth: depth + 1) }
            default:
                // A number, true, false or null.
                let start = position
                while position < bytes.count, !",}] \n\r\t".utf8.contains(bytes[position]) { position += 1 }
                guard position > start else { throw malformed("value") }
            }
        }
    }
}

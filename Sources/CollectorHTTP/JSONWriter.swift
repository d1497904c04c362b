import CollectorModel
import Exposition
import Hummingbird
import NIOCore
import Stats

/// A small streaming JSON writer for large answers (thousands of rows), several times faster
/// than `JSONEncoder` and without a model copy. Keys are written in the order given; callers
/// give them sorted, as `JSONEncoder.flashback` would.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    /// Nothing written yet at the current level (no comma needed before the next member).
    private var fresh = true

    init(capacity: Int = 4096) {
        bytes.reserveCapacity(capacity)
    }

    private mutating func separate() {
        if !fresh { bytes.append(UInt8(ascii: ",")) }
        fresh = false
    }

    mutating func beginObject() {
        separate()
        bytes.append(UInt8(ascii: "{"))
        fresh = true
    }

    mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        fresh = false
    }

    mutating func beginArray() {
        separate()
        bytes.append(UInt8(ascii: "["))
        fresh = true
    }

    mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        fresh = false
    }

    /// A member name; the next value belongs to it.
    mutating func key(_ name: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        fresh = true
    }

    mutating func string(_ value: String) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        // Most strings (ids, names) need no escape: copied in one go.
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            bytes.append(contentsOf: value.utf8)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ value: Int64) {
        separate()
        Exposition.appendInteger(value, to: &bytes)
    }

    /// Integral values without a fraction (`32`, as `JSONEncoder`), others in their shortest
    /// round-tripping form; non-finite values as `null`.
    mutating func number(_ value: Double) {
        guard value.isFinite else {
            separate()
            bytes.append(contentsOf: "null".utf8)
            return
        }
        if value.rounded() == value, abs(value) < 1e15 {
            number(Int64(value))
        } else {
            separate()
            bytes.append(contentsOf: "\(value)".utf8)
        }
    }

    mutating func bool(_ value: Bool) {
        separate()
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// An ISO-8601 UTC time with milliseconds, as a string.
    mutating func time(milliseconds: Int64) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        StatsDates.append(milliseconds: milliseconds, to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// The bytes written so far, leaving the writer empty but in the same place of the
    /// document (for answers sent in chunks).
    /// The written bytes in a buffer (one copy); the writer starts again, keeping its capacity.
    mutating func takeBuffer() -> ByteBuffer {
        let buffer = ByteBuffer(bytes: bytes)
        bytes.removeAll(keepingCapacity: true)
        return buffer
    }

    mutating func take() -> [UInt8] {
        let taken = bytes
        bytes.removeAll(keepingCapacity: true)
        return taken
    }

    /// A 200 answer with the written JSON.
    func response(status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// One accepted write, as recorded in the `ingest_log` column family before it is acknowledged.
///
/// The log is what makes an acknowledged write durable while its samples wait in memory for the
/// next flush into sample blocks: a flush writes the blocks and deletes the log entries it covers
/// in one atomic batch, and opening the store replays whatever is left.
///
/// Encoding (docs/format.md): `0x01 ‖ points`, each point `series u64 BE ‖ time i64 BE ‖
/// n u8 ‖ n × (field u16 BE ‖ value f64 BE)`. A point with more than 255 fields is written as
/// several points with the same series and time.
public struct IngestLogEntry: Sendable {
    public static let formatVersion: UInt8 = 1

    public private(set) var bytes: [UInt8]

    /// A `IngestLogEntry` from its parts.
    public init(reservingPoints points: Int = 0, fieldsPerPoint: Int = 4) {
        bytes = [Self.formatVersion]
        bytes.reserveCapacity(1 + points * (17 + fieldsPerPoint * 10))
    }

    /// Appends one point; `fields` are (field id, value).
    public mutating func append(series: UInt64, timestamp: Int64, fields: ArraySlice<(UInt16, Double)>) {
        var rest = fields
        while !rest.isEmpty {
            let chunk = rest.prefix(255)
            rest = rest.dropFirst(chunk.count)
            // Sized once, then stored in place: one append a point instead of one a value.
            var offset = bytes.count
            bytes.append(contentsOf: repeatElement(0, count: 17 + 10 * chunk.count))
            bytes.withUnsafeMutableBytes { out in
                out.storeBytes(of: series.bigEndian, toByteOffset: offset, as: UInt64.self)
                out.storeBytes(of: UInt64(bitPattern: timestamp).bigEndian, toByteOffset: offset + 8, as: UInt64.self)
                out[offset + 16] = UInt8(chunk.count)
                offset += 17
                for (field, value) in chunk {
                    out.storeBytes(of: field.bigEndian, toByteOffset: offset, as: UInt16.self)
                    out.storeBytes(of: value.bitPattern.bigEndian, toByteOffset: offset + 2, as: UInt64.self)
                    offset += 10
                }
            }
        }
    }

    /// Calls `body(series, sample)` for every sample of an encoded entry; `false` when the bytes
    /// are not a whole, well-formed entry (then nothing is reported).
    public static func decode(_ bytes: UnsafeRawBufferPointer, _ body: (UInt64, FieldSample) -> Void) -> Bool {
        guard bytes.count >= 1, bytes[0] == formatVersion, isWellFormed(bytes) else { return false }
        var offset = 1
        while offset < bytes.count {
            let series = readBigEndian(UInt64.self, bytes, at: offset)
            let timestamp = Int64(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 8))
            let count = Int(bytes[offset + 16])
            offset += 17
            for _ in 0..<count {
                body(series, FieldSample(field: readBigEndian(UInt16.self, bytes, at: offset), timestamp: timestamp,
                                         value: Double(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 2))))
                offset += 10
            }
        }
        return true
    }

    /// The fields of one point of an encoded entry, read in place.
    public struct Fields {
        fileprivate let bytes: UnsafeRawBufferPointer
        fileprivate let start: Int
        /// How many fields the point carries.
        public let count: Int

        /// The field id and value at `index` (`0..<count`).
        public subscript(index: Int) -> (field: UInt16, value: Double) {
            let offset = start + index * 10
            return (readBigEndian(UInt16.self, bytes, at: offset), Double(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 2)))
        }
    }

    /// Calls `body(series, time, fields)` for every point of an encoded entry; `false` when the
    /// bytes are not a whole, well-formed entry (then nothing is reported).
    public static func decodePoints(_ bytes: UnsafeRawBufferPointer, _ body: (UInt64, Int64, Fields) -> Void) -> Bool {
        guard bytes.count >= 1, bytes[0] == formatVersion, isWellFormed(bytes) else { return false }
        var offset = 1
        while offset < bytes.count {
            let count = Int(bytes[offset + 16])
            body(readBigEndian(UInt64.self, bytes, at: offset), Int64(bitPattern: readBigEndian(UInt64.self, bytes, at: offset + 8)),
                 Fields(bytes: bytes, start: offset + 17, count: count))
            offset += 17 + count * 10
        }
        return true
    }

    private static func isWellFormed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 1
        while offset < bytes.count {
            guard offset + 17 <= bytes.count else { return false }
            offset += 17 + Int(bytes[offset + 16]) * 10
        }
        return offset == bytes.count
    }
}

/// The sealed rollups of one series for one day, one ``FieldRollup`` per field: the value of the
/// `day` column family. Written once a day can no longer change (its end is older than
/// `--max-sample-age`), as the merge of the day's samples; kept for `--retention-day`.
///
/// Encoding (docs/format.md): `0x02 ‖ count u16 BE ‖ count × (field u16 BE ‖ count u64 ‖ sum f64 ‖
/// min f64 ‖ max f64 ‖ first f64 ‖ firstTime i64 ‖ last f64 ‖ lastTime i64 ‖ online u64 ‖
/// onlineMinutes u64)`, all big-endian, fields ascending. Version 1 (without `onlineMinutes`) is
/// still read, with the ONLINE minutes taken as the ONLINE samples (at most 1,440).
public struct DayRecord: Equatable, Sendable {
    public static let formatVersion: UInt8 = 2
    static let entrySize = 2 + 10 * 8
    static let version1EntrySize = 2 + 9 * 8

    /// Rollups by field, ascending by field id.
    public var fields: [(field: UInt16, rollup: FieldRollup)]

    /// A `DayRecord` from its parts.
    public init(fields: [(field: UInt16, rollup: FieldRollup)]) {
        self.fields = fields.sorted { $0.field < $1.field }
    }

    public static func == (lhs: DayRecord, rhs: DayRecord) -> Bool {
        lhs.fields.count == rhs.fields.count && zip(lhs.fields, rhs.fields).allSatisfy { $0.field == $1.field && $0.rollup == $1.rollup }
    }

    /// The rollup of `field` that day, if it had samples.
    public func rollup(field: UInt16) -> FieldRollup? {
        fields.first { $0.field == field }?.rollup
    }

    /// The record's bytes (format version first), as stored in the `day` column family.
    public func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(3 + fields.count * Self.entrySize)
        bytes.append(Self.formatVersion)
        appendBigEndian(UInt16(clamping: fields.count), to: &bytes)
        for (field, rollup) in fields.prefix(Int(UInt16.max)) {
            appendBigEndian(field, to: &bytes)
            appendBigEndian(rollup.count, to: &bytes)
            appendBigEndian(rollup.sum.bitPattern, to: &bytes)
            appendBigEndian(rollup.min.bitPattern, to: &bytes)
            appendBigEndian(rollup.max.bitPattern, to: &bytes)
            appendBigEndian(rollup.first.bitPattern, to: &bytes)
            appendBigEndian(UInt64(bitPattern: rollup.firstTime), to: &bytes)
            appendBigEndian(rollup.last.bitPattern, to: &bytes)
            appendBigEndian(UInt64(bitPattern: rollup.lastTime), to: &bytes)
            appendBigEndian(rollup.onlineCount, to: &bytes)
            appendBigEndian(rollup.onlineMinutes, to: &bytes)
        }
        return bytes
    }

    /// Decodes a record; `nil` for a wrong version or length.
    public init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 3, bytes[0] == 1 || bytes[0] == Self.formatVersion else { return nil }
        let version1 = bytes[0] == 1
        let entrySize = version1 ? Self.version1EntrySize : Self.entrySize
        let count = Int(readBigEndian(UInt16.self, bytes, at: 1))
        guard bytes.count == 3 + count * entrySize else { return nil }
        var fields: [(field: UInt16, rollup: FieldRollup)] = []
        fields.reserveCapacity(count)
        var offset = 3
        for _ in 0..<count {
            func word(_ index: Int) -> UInt64 { readBigEndian(UInt64.self, bytes, at: offset + 2 + index * 8) }
            let rollup = FieldRollup(
                count: word(0), sum: Double(bitPattern: word(1)), min: Double(bitPattern: word(2)), max: Double(bitPattern: word(3)),
                first: Double(bitPattern: word(4)), firstTime: Int64(bitPattern: word(5)),
                last: Double(bitPattern: word(6)), lastTime: Int64(bitPattern: word(7)), onlineCount: word(8),
                onlineMinutes: version1 ? min(word(8), 1440) : word(9))
            fields.append((readBigEndian(UInt16.self, bytes, at: offset), rollup))
            offset += entrySize
        }
        self.fields = fields
    }

    /// A `DayRecord` from its parts.
    public init?(decoding bytes: [UInt8]) {
        guard let record = bytes.withUnsafeBytes({ DayRecord(decoding: $0) }) else { return nil }
        self = record
    }
}

@inline(__always)
func appendBigEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
    withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
}

@inline(__always)
func readBigEndian<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
    T(bigEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
}

/// The compact encoding of a sample block (version 2, docs/format.md): per field, timestamps as
/// delta-of-delta zigzag varints and values as byte-aligned XOR with the previous value.
///
/// ```
/// 0x02                        version
/// fields   varint             number of fields
/// per field, ascending:
///   field  u16 BE
///   n      varint             samples of the field (≥ 1)
///   t0     i64 BE             first timestamp, ns
///   v0     u64 BE             first value's bit pattern
///   n-1 ×  { dod zigzag varint } timestamps: delta − previous delta (first previous delta 0)
///   n-1 ×  { h u8 ‖ m bytes }    values: x = bits ⊕ previous bits; h = 0 when x = 0, else
///                                (leading zero bytes << 4) | m, m = meaningful bytes (1…8),
///                                followed by those m bytes of x, big-endian
/// ```
/// A series reporting once a minute costs about one byte per timestamp, and a value that does not
/// change one byte. Decoding checks every length and that timestamps strictly increase.
enum SampleBlockCodec {
    static let version: UInt8 = 2
    static let signBit: UInt64 = 1 << 63

    static func encode(_ samples: [FieldSample]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + samples.count * 8)
        out.append(version)
        var fieldCount = 0
        var index = 0
        while index < samples.count {
            fieldCount += 1
            var end = index + 1
            while end < samples.count, samples[end].field == samples[index].field { end += 1 }
            index = end
        }
        appendVarint(UInt64(fieldCount), to: &out)
        index = 0
        while index < samples.count {
            let field = samples[index].field
            var end = index + 1
            while end < samples.count, samples[end].field == field { end += 1 }
            appendBigEndian(field, to: &out)
            appendVarint(UInt64(end - index), to: &out)
            appendBigEndian(UInt64(bitPattern: samples[index].timestamp), to: &out)
            appendBigEndian(samples[index].value.bitPattern, to: &out)
            var previousTime = samples[index].timestamp
            var previousDelta: Int64 = 0
            for sample in samples[(index + 1)..<end] {
                let delta = sample.timestamp &- previousTime
                appendVarint(zigzag(delta &- previousDelta), to: &out)
                previousDelta = delta
                previousTime = sample.timestamp
            }
            var previousBits = samples[index].value.bitPattern
            for sample in samples[(index + 1)..<end] {
                let bits = sample.value.bitPattern
                let xor = bits ^ previousBits
                previousBits = bits
                if xor == 0 {
                    out.append(0)
                    continue
                }
                let leading = xor.leadingZeroBitCount / 8
                let trailing = xor.trailingZeroBitCount / 8
                let meaningful = 8 - leading - trailing
                out.append(UInt8(leading << 4 | meaningful))
                let shifted = xor >> (trailing * 8)
                for byte in stride(from: meaningful - 1, through: 0, by: -1) {
                    out.append(UInt8(truncatingIfNeeded: shifted >> (byte * 8)))
                }
            }
            index = end
        }
        return out
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> [FieldSample]? {
        var reader = Reader(bytes: bytes, offset: 1)
        guard bytes.first == version, let fieldCount = reader.varint(), fieldCount <= 65_536 else { return nil }
        var samples: [FieldSample] = []
        var lastField: Int = -1
        for _ in 0..<fieldCount {
            guard let field = reader.u16(), Int(field) > lastField, let count = reader.varint(), count >= 1,
                  count <= UInt64(bytes.count), let firstTime = reader.u64(), let firstBits = reader.u64() else { return nil }
            lastField = Int(field)
            let start = samples.count
            samples.reserveCapacity(start + Int(count))
            var time = Int64(bitPattern: firstTime)
            samples.append(FieldSample(field: field, timestamp: time, value: Double(bitPattern: firstBits)))
            // Deltas are unsigned: two timestamps of a field may be up to 2⁶⁴ − 1 ns apart (the
            // encoder's wrapping Int64 arithmetic writes the same bits). Time is compared in the
            // order-preserving unsigned form (sign bit flipped), so it must strictly increase.
            var delta: UInt64 = 0
            var ordered = UInt64(bitPattern: time) ^ Self.signBit
            for _ in 1..<Int(count) {
                guard let encoded = reader.varint() else { return nil }
                delta = delta &+ UInt64(bitPattern: unzigzag(encoded))
                guard delta > 0 else { return nil }
                let (next, overflow) = ordered.addingReportingOverflow(delta)
                guard !overflow else { return nil }
                ordered = next
                time = Int64(bitPattern: ordered ^ Self.signBit)
                samples.append(FieldSample(field: field, timestamp: time, value: 0))
            }
            var bits = firstBits
            for position in (start + 1)..<(start + Int(count)) {
                guard let header = reader.byte() else { return nil }
                if header != 0 {
                    let leading = Int(header >> 4)
                    let meaningful = Int(header & 0x0F)
                    guard meaningful >= 1, leading + meaningful <= 8 else { return nil }
                    var xor: UInt64 = 0
                    for _ in 0..<meaningful {
                        guard let byte = reader.byte() else { return nil }
                        xor = xor << 8 | UInt64(byte)
                    }
                    xor <<= UInt64((8 - leading - meaningful) * 8)
                    bits ^= xor
                }
                samples[position].value = Double(bitPattern: bits)
            }
        }
        guard reader.offset == bytes.count else { return nil }
        return samples
    }

    struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset: Int

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func u16() -> UInt16? {
            guard offset + 2 <= bytes.count else { return nil }
            defer { offset += 2 }
            return readBigEndian(UInt16.self, bytes, at: offset)
        }

        mutating func u64() -> UInt64? {
            guard offset + 8 <= bytes.count else { return nil }
            defer { offset += 8 }
            return readBigEndian(UInt64.self, bytes, at: offset)
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count, shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
    }

    @inline(__always)
    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        out.append(UInt8(rest))
    }

    @inline(__always)
    static func zigzag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    @inline(__always)
    static func unzigzag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1)
    }
}

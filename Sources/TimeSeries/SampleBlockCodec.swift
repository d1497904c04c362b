/// The compact encodings of a sample block (docs/format.md): per field, timestamps as
/// delta-of-delta zigzag varints and values either as decimal mantissas or as byte-aligned XOR
/// with the previous value.
///
/// Version 3 (written):
/// ```
/// 0x03                        version
/// fields   varint             number of fields
/// per field, ascending:
///   field  u16 BE
///   n      varint             samples of the field (≥ 1)
///   mode   u8                 bit 7: the timestamps are the previous field's (same n; none follow)
///                             bits 0–6: 0 = XOR values, 1 + e = decimal values with exponent e (0…15)
///   unless shared: t0 i64 BE, n-1 × { dod zigzag varint }   timestamps: delta − previous delta
///   XOR:     v0 u64 BE, n-1 × { h u8 ‖ m bytes }   x = bits ⊕ previous bits; h = 0 when x = 0, else
///            (leading zero bytes << 4) | m, m = meaningful bytes (1…8), those m bytes of x, big-endian
///   decimal: n × { zigzag varint }   the first mantissa, then each one's difference from the
///            previous; value = mantissa / 10^e, which is the stored double bit for bit
/// ```
/// Version 2 (still read; ``encode(_:version:)`` writes it for tests) is version 3 without the
/// mode byte: XOR values and own timestamps for every field.
///
/// A series reporting once a minute costs about one byte per timestamp (none for a field whose
/// times repeat the previous field's), a counter or a value with few decimals its mantissa
/// difference (1–3 bytes), and other values their XOR. Decoding checks every length and that
/// timestamps strictly increase, and never traps on damaged bytes.
enum SampleBlockCodec {
    static let version: UInt8 = 3
    static let xorVersion: UInt8 = 2
    static let signBit: UInt64 = 1 << 63
    static let sharedTimes: UInt8 = 0x80
    /// Exact powers of ten, 10^0…10^15 (every one is a double exactly).
    static let powersOfTen: [Double] = (0...15).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }
    /// Mantissas stay below 2^53, where every integer is a double exactly.
    static let mantissaLimit: Double = 9_007_199_254_740_992

    static func encode(_ samples: [FieldSample], version: UInt8 = version) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + samples.count * 4)
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
        var previousField: ArraySlice<FieldSample> = []
        while index < samples.count {
            let field = samples[index].field
            var end = index + 1
            while end < samples.count, samples[end].field == field { end += 1 }
            let run = samples[index..<end]
            appendBigEndian(field, to: &out)
            appendVarint(UInt64(run.count), to: &out)
            if version == xorVersion {
                appendTimes(run, to: &out)
                appendXOR(run, to: &out)
            } else {
                let shared = previousField.count == run.count && zip(previousField, run).allSatisfy { $0.timestamp == $1.timestamp }
                let exponent = decimalExponent(run)
                out.append((shared ? sharedTimes : 0) | (exponent.map { UInt8($0 + 1) } ?? 0))
                if !shared { appendTimes(run, to: &out) }
                if let exponent {
                    appendDecimal(run, exponent: exponent, to: &out)
                } else {
                    appendXOR(run, to: &out)
                }
            }
            previousField = run
            index = end
        }
        return out
    }

    private static func appendTimes(_ run: ArraySlice<FieldSample>, to out: inout [UInt8]) {
        appendBigEndian(UInt64(bitPattern: run[run.startIndex].timestamp), to: &out)
        var previousTime = run[run.startIndex].timestamp
        var previousDelta: Int64 = 0
        for sample in run.dropFirst() {
            let delta = sample.timestamp &- previousTime
            appendVarint(zigzag(delta &- previousDelta), to: &out)
            previousDelta = delta
            previousTime = sample.timestamp
        }
    }

    private static func appendXOR(_ run: ArraySlice<FieldSample>, to out: inout [UInt8]) {
        var previousBits = run[run.startIndex].value.bitPattern
        appendBigEndian(previousBits, to: &out)
        for sample in run.dropFirst() {
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
    }

    /// The smallest exponent e (0…15) with which every value of `run` is a mantissa below 2^53
    /// divided by 10^e, bit for bit; `nil` when there is none (NaN, infinities, -0, values with
    /// many digits), and then the values are XORed.
    static func decimalExponent(_ run: ArraySlice<FieldSample>) -> Int? {
        var exponent = 0
        for sample in run {
            while !isDecimal(sample.value, exponent: exponent) {
                exponent += 1
                if exponent >= powersOfTen.count { return nil }
            }
        }
        // A larger exponent than a value needed keeps it exact too (the quotient is the same
        // number); checked anyway, since the encoding must be lossless.
        return run.allSatisfy { isDecimal($0.value, exponent: exponent) } ? exponent : nil
    }

    @inline(__always)
    private static func mantissa(_ value: Double, exponent: Int) -> Double {
        (value * powersOfTen[exponent]).rounded()
    }

    @inline(__always)
    private static func isDecimal(_ value: Double, exponent: Int) -> Bool {
        let mantissa = mantissa(value, exponent: exponent)
        // −0 divides back to itself but its integer mantissa is +0: it keeps XOR.
        return abs(mantissa) < mantissaLimit && value.bitPattern != (-0.0).bitPattern
            && (mantissa / powersOfTen[exponent]).bitPattern == value.bitPattern
    }

    private static func appendDecimal(_ run: ArraySlice<FieldSample>, exponent: Int, to out: inout [UInt8]) {
        var previous: Int64 = 0
        for sample in run {
            let mantissa = Int64(mantissa(sample.value, exponent: exponent))
            appendVarint(zigzag(mantissa &- previous), to: &out)
            previous = mantissa
        }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> [FieldSample]? {
        guard let version = bytes.first, version == Self.version || version == xorVersion else { return nil }
        var reader = Reader(bytes: bytes, offset: 1)
        guard let fieldCount = reader.varint(), fieldCount <= 65_536 else { return nil }
        var samples: [FieldSample] = []
        var lastField: Int = -1
        var previousRun = 0..<0
        for _ in 0..<fieldCount {
            guard let field = reader.u16(), Int(field) > lastField, let count = reader.varint(), count >= 1,
                  count <= UInt64(bytes.count) else { return nil }
            lastField = Int(field)
            var mode: UInt8 = 0
            if version == Self.version {
                guard let byte = reader.byte(), byte & 0x7F <= UInt8(powersOfTen.count) else { return nil }
                mode = byte
            }
            let start = samples.count
            samples.reserveCapacity(start + Int(count))
            if mode & sharedTimes != 0 {
                guard previousRun.count == Int(count) else { return nil }
                for position in previousRun { samples.append(FieldSample(field: field, timestamp: samples[position].timestamp, value: 0)) }
            } else {
                guard let firstTime = reader.u64() else { return nil }
                var time = Int64(bitPattern: firstTime)
                samples.append(FieldSample(field: field, timestamp: time, value: 0))
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
            }
            let run = start..<(start + Int(count))
            if mode & 0x7F == 0 {
                guard let firstBits = reader.u64() else { return nil }
                var bits = firstBits
                samples[start].value = Double(bitPattern: bits)
                for position in run.dropFirst() {
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
            } else {
                let scale = powersOfTen[Int(mode & 0x7F) - 1]
                var mantissa: Int64 = 0
                for position in run {
                    guard let encoded = reader.varint() else { return nil }
                    // Wrapping: damaged bytes give some value, never a trap.
                    mantissa = mantissa &+ unzigzag(encoded)
                    samples[position].value = Double(mantissa) / scale
                }
            }
            previousRun = run
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

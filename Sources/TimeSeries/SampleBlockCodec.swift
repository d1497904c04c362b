/// The compact encodings of a sample block (docs/format.md): per field, timestamps as
/// delta-of-delta zigzag varints and values either as decimal mantissas or as byte-aligned XOR
/// with the previous value.
///
/// Version 4 (written) is version 3 with bit-packed timestamps and decimal values:
/// ```
///   unless shared: t0 i64 BE, then when n ≥ 2 the n-1 deltas (each > 0) packed:
///            base varint (smallest delta), step varint (their common divisor over the base,
///            0 when all are equal), width u8, n-1 × width bits of (delta − base) / step
///   decimal: kind u8, then 0 = frame of reference: base zigzag varint (smallest mantissa),
///            width u8, n × width bits of (mantissa − base);
///            1 = differences: first mantissa zigzag varint, base zigzag varint (smallest
///            difference), width u8, n-1 × width bits of (difference − base)
///   bits are packed least significant first, ⌈count × width / 8⌉ bytes; width ≤ 64
/// ```
/// The encoder takes the smaller of the two decimal kinds. A series reporting at a regular
/// interval costs a few bytes of timestamps for a whole block (width 0), one jittering by whole
/// seconds 1–2 bits a sample, and a value its range's bits, not whole bytes.
///
/// Version 3 (still read; ``encode(_:version:)`` writes it for tests):
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
    static let version: UInt8 = 4
    static let varintVersion: UInt8 = 3
    static let xorVersion: UInt8 = 2
    static let signBit: UInt64 = 1 << 63
    /// Most samples a block decodes to: far above what a block holds (the merge operator keeps
    /// 131,072, and flushes write no more), low enough that damaged bytes cannot ask for an
    /// unbounded allocation.
    static let maxSamples = 1 << 20
    static let sharedTimes: UInt8 = 0x80
    /// Version 4's mode bit: decimal values packed as differences (else over their minimum).
    static let decimalDifferences: UInt8 = 0x40
    /// Version 4's time units: 10^0 … 10^18 ns.
    static let timeScales: [Int64] = (0...18).map { (0..<$0).reduce(Int64(1)) { value, _ in value * 10 } }
    /// Exact powers of ten, 10^0…10^15 (every one is a double exactly).
    static let powersOfTen: [Double] = (0...15).map { (0..<$0).reduce(1.0) { value, _ in value * 10 } }
    /// Mantissas stay below 2^53, where every integer is a double exactly.
    static let mantissaLimit: Double = 9_007_199_254_740_992

    static func encode(_ samples: [FieldSample], version: UInt8 = version) -> [UInt8] {
        if version == Self.version { return encodePacked(samples) }
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
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(1, run.count)) { decimalMantissas(run, into: $0) }
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

    /// Version 4: see the type's documentation. Each field's run goes through one scratch
    /// buffer (on the stack for the runs a flush writes), so encoding allocates only its output.
    static func encodePacked(_ samples: [FieldSample]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + samples.count * 2)
        out.append(version)
        var runs = 0
        var longest = 0
        var index = 0
        while index < samples.count {
            var end = index + 1
            while end < samples.count, samples[end].field == samples[index].field { end += 1 }
            runs += 1
            longest = max(longest, end - index)
            index = end
        }
        appendVarint(UInt64(runs), to: &out)
        // Thirds: a run's mantissas, their differences, its time deltas.
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: max(3, 3 * longest)) { scratch in
            var previous: ArraySlice<FieldSample> = []
            var start = 0
            while start < samples.count {
                var end = start + 1
                while end < samples.count, samples[end].field == samples[start].field { end += 1 }
                let run = samples[start..<end]
                let field = run[run.startIndex].field
                appendVarint(previous.isEmpty ? UInt64(field) : UInt64(field - previous[previous.startIndex].field - 1), to: &out)
                let shared = previous.count == run.count && zip(previous, run).allSatisfy { $0.timestamp == $1.timestamp }
                let count = run.count
                let mantissas = UnsafeMutableBufferPointer(rebasing: scratch[0..<count])
                let differences = UnsafeMutableBufferPointer(rebasing: scratch[count..<(2 * count)])
                let deltas = UnsafeMutableBufferPointer(rebasing: scratch[(2 * count)..<(3 * count)])
                let exponent = decimalMantissas(run, into: mantissas)
                var plan: DecimalPlan?
                if exponent != nil { plan = DecimalPlan(mantissas: mantissas, differences: differences) }
                out.append((shared ? sharedTimes : 0) | (plan?.differences == true ? decimalDifferences : 0) | (exponent.map { UInt8($0 + 1) } ?? 0))
                if !shared {
                    appendVarint(UInt64(count), to: &out)
                    appendPackedTimes(run, scratch: deltas, to: &out)
                }
                if let plan {
                    plan.write(mantissas: mantissas, to: &out)
                } else {
                    appendXOR(run, to: &out)
                }
                previous = run
                start = end
            }
        }
        return out
    }

    /// ``decimalExponent(_:)``, with each value's mantissa in `mantissas` (as `Int64` bit
    /// patterns; nothing useful when `nil`).
    private static func decimalMantissas(_ run: ArraySlice<FieldSample>, into mantissas: UnsafeMutableBufferPointer<UInt64>) -> Int? {
        var exponent = 0
        for sample in run {
            while !isDecimal(sample.value, exponent: exponent) {
                exponent += 1
                if exponent >= powersOfTen.count { return nil }
            }
        }
        // A larger exponent than a value needed keeps it exact too; checked with the mantissa
        // that is written, since the encoding must be lossless.
        for (offset, sample) in run.enumerated() {
            guard isDecimal(sample.value, exponent: exponent) else { return nil }
            mantissas[offset] = UInt64(bitPattern: Int64(mantissa(sample.value, exponent: exponent)))
        }
        return exponent
    }

    /// Decimal values packed over their smallest mantissa, or their differences over the
    /// smallest difference, whichever is shorter.
    private struct DecimalPlan {
        var differences: Bool
        var low: Int64
        var lowDifference: Int64
        var rawWidth: Int
        var differenceWidth: Int
        /// The differences of consecutive mantissas, kept for `write`.
        var differenceValues: UnsafeMutableBufferPointer<UInt64>

        /// `mantissas` as `Int64` bit patterns; `differences` has room for as many.
        init(mantissas: UnsafeMutableBufferPointer<UInt64>, differences buffer: UnsafeMutableBufferPointer<UInt64>) {
            // Mantissas are below 2^53 in magnitude, so differences and offsets fit without wrapping.
            var low = Int64.max
            for mantissa in mantissas { low = min(low, Int64(bitPattern: mantissa)) }
            var lowDifference = Int64.max
            for index in mantissas.indices.dropFirst() {
                let difference = Int64(bitPattern: mantissas[index]) &- Int64(bitPattern: mantissas[index - 1])
                buffer[index - 1] = UInt64(bitPattern: difference)
                lowDifference = min(lowDifference, difference)
            }
            if mantissas.count < 2 { lowDifference = 0 }
            var rawBits: UInt64 = 0
            for mantissa in mantissas { rawBits |= UInt64(bitPattern: Int64(bitPattern: mantissa) &- low) }
            var differenceBits: UInt64 = 0
            for index in 0..<(mantissas.count - 1) { differenceBits |= UInt64(bitPattern: Int64(bitPattern: buffer[index]) &- lowDifference) }
            self.low = low
            self.lowDifference = lowDifference
            self.rawWidth = 64 - rawBits.leadingZeroBitCount
            self.differenceWidth = 64 - differenceBits.leadingZeroBitCount
            self.differenceValues = UnsafeMutableBufferPointer(rebasing: buffer[0..<(mantissas.count - 1)])
            let rawBytes = SampleBlockCodec.varintSize(SampleBlockCodec.zigzag(low)) + 1 + (mantissas.count * rawWidth + 7) / 8
            let differenceBytes = SampleBlockCodec.varintSize(SampleBlockCodec.zigzag(Int64(bitPattern: mantissas[0])))
                + SampleBlockCodec.varintSize(SampleBlockCodec.zigzag(lowDifference)) + 1 + ((mantissas.count - 1) * differenceWidth + 7) / 8
            self.differences = rawBytes > differenceBytes
        }

        func write(mantissas: UnsafeMutableBufferPointer<UInt64>, to out: inout [UInt8]) {
            if differences {
                SampleBlockCodec.appendVarint(SampleBlockCodec.zigzag(Int64(bitPattern: mantissas[0])), to: &out)
                SampleBlockCodec.appendVarint(SampleBlockCodec.zigzag(lowDifference), to: &out)
                SampleBlockCodec.appendPacked(UnsafeBufferPointer(differenceValues), minus: UInt64(bitPattern: lowDifference), width: differenceWidth, to: &out)
            } else {
                SampleBlockCodec.appendVarint(SampleBlockCodec.zigzag(low), to: &out)
                SampleBlockCodec.appendPacked(UnsafeBufferPointer(mantissas), minus: UInt64(bitPattern: low), width: rawWidth, to: &out)
            }
        }
    }

    /// Timestamps as a power-of-ten unit (the largest dividing every one), the first in that
    /// unit, then the deltas packed over their smallest value and common step. `scratch` holds
    /// at least `run.count - 1` values.
    private static func appendPackedTimes(_ run: ArraySlice<FieldSample>, scratch: UnsafeMutableBufferPointer<UInt64>, to out: inout [UInt8]) {
        var scale = 0
        while scale < timeScales.count - 1, run.allSatisfy({ $0.timestamp % timeScales[scale + 1] == 0 }) { scale += 1 }
        let unit = timeScales[scale]
        out.append(UInt8(scale))
        let first = run[run.startIndex].timestamp / unit
        appendVarint(zigzag(first), to: &out)
        guard run.count >= 2 else { return }
        // Timestamps strictly increase (a block holds one sample per field and time), so every
        // delta is positive; as unsigned it is exact even across the whole Int64 range.
        var previous = first
        var base = UInt64.max
        for (offset, sample) in run.dropFirst().enumerated() {
            let time = sample.timestamp / unit
            let delta = UInt64(bitPattern: time &- previous)
            scratch[offset] = delta
            base = min(base, delta)
            previous = time
        }
        let deltas = UnsafeMutableBufferPointer(rebasing: scratch[0..<(run.count - 1)])
        var step: UInt64 = 0
        for delta in deltas { step = gcd(step, delta &- base) }
        appendVarint(base, to: &out)
        appendVarint(step, to: &out)
        var bits: UInt64 = 0
        for index in deltas.indices {
            deltas[index] = step == 0 ? 0 : (deltas[index] &- base) / step
            bits |= deltas[index]
        }
        appendPacked(UnsafeBufferPointer(deltas), minus: 0, width: 64 - bits.leadingZeroBitCount, to: &out)
    }

    /// Width byte and `value − base` of each value in `width` bits, least significant first
    /// (`width` covers every one).
    private static func appendPacked(_ values: UnsafeBufferPointer<UInt64>, minus base: UInt64, width: Int, to out: inout [UInt8]) {
        out.append(UInt8(width))
        guard width > 0 else { return }
        var accumulator: UInt64 = 0
        var filled = 0
        for value in values {
            var rest = value &- base
            var remaining = width
            while remaining > 0 {
                let take = min(remaining, 64 - filled)
                let part = take == 64 ? rest : rest & ((1 << UInt64(take)) - 1)
                accumulator |= part << UInt64(filled)
                filled += take
                remaining -= take
                rest = take == 64 ? 0 : rest >> UInt64(take)
                while filled >= 8 {
                    out.append(UInt8(truncatingIfNeeded: accumulator))
                    accumulator >>= 8
                    filled -= 8
                }
            }
        }
        if filled > 0 { out.append(UInt8(truncatingIfNeeded: accumulator)) }
    }

    private static func varintSize(_ value: UInt64) -> Int {
        max(1, (64 - value.leadingZeroBitCount + 6) / 7)
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (x, y) = (a, b)
        while y != 0 { (x, y) = (y, x % y) }
        return x
    }

    static func decode(_ bytes: UnsafeRawBufferPointer) -> [FieldSample]? {
        guard let version = bytes.first else { return nil }
        if version == Self.version { return decodePacked(bytes) }
        guard version == varintVersion || version == xorVersion else { return nil }
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
            if version == varintVersion {
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
                guard reader.xor(into: &samples, run) else { return nil }
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

    /// Version 4. Counts are bounded by ``maxSamples`` (a field of equal values at regular
    /// times takes a few bytes whatever its length); arithmetic on damaged bytes wraps or is
    /// refused, never traps.
    static func decodePacked(_ bytes: UnsafeRawBufferPointer) -> [FieldSample]? {
        var reader = Reader(bytes: bytes, offset: 1)
        guard let fieldCount = reader.varint(), fieldCount <= 65_536 else { return nil }
        var samples: [FieldSample] = []
        var field: UInt64 = 0
        var previousRun = 0..<0
        for index in 0..<fieldCount {
            guard let gap = reader.varint(), let mode = reader.byte() else { return nil }
            let (next, carry) = (index == 0 ? 0 : field + 1).addingReportingOverflow(gap)
            guard !carry, next <= UInt64(UInt16.max) else { return nil }
            field = next
            let exponent = Int(mode & 0x1F)
            guard exponent <= powersOfTen.count, mode & 0x20 == 0, exponent > 0 || mode & decimalDifferences == 0 else { return nil }
            let start = samples.count
            let id = UInt16(field)
            if mode & sharedTimes != 0 {
                guard !previousRun.isEmpty else { return nil }
                for position in previousRun { samples.append(FieldSample(field: id, timestamp: samples[position].timestamp, value: 0)) }
            } else {
                guard let count = reader.varint(), count >= 1, count <= UInt64(maxSamples - samples.count),
                      let scale = reader.byte(), Int(scale) < timeScales.count, let firstScaled = reader.varint() else { return nil }
                let unit = timeScales[Int(scale)]
                // Times are rebuilt in the unit, in the order-preserving unsigned form (sign bit
                // flipped): each must be above the previous one and, times the unit, an Int64.
                var ordered = UInt64(bitPattern: unzigzag(firstScaled)) ^ signBit
                func append(_ ordered: UInt64) -> Bool {
                    let (time, overflow) = Int64(bitPattern: ordered ^ signBit).multipliedReportingOverflow(by: unit)
                    guard !overflow else { return false }
                    samples.append(FieldSample(field: id, timestamp: time, value: 0))
                    return true
                }
                guard append(ordered) else { return nil }
                if count >= 2 {
                    guard let base = reader.varint(), let step = reader.varint(), let offsets = reader.packed(count: Int(count) - 1) else { return nil }
                    samples.reserveCapacity(samples.count + offsets.count)
                    for offset in offsets {
                        let (scaled, overflow) = offset.multipliedReportingOverflow(by: step)
                        let (delta, carry) = base.addingReportingOverflow(scaled)
                        guard !overflow, !carry, delta > 0 else { return nil }
                        let (next, beyond) = ordered.addingReportingOverflow(delta)
                        guard !beyond else { return nil }
                        ordered = next
                        guard append(ordered) else { return nil }
                    }
                }
            }
            let run = start..<samples.count
            if exponent == 0 {
                guard reader.xor(into: &samples, run) else { return nil }
            } else {
                let scale = powersOfTen[exponent - 1]
                // Wrapping arithmetic: damaged bytes give some value, never a trap.
                guard let first = reader.varint() else { return nil }
                if mode & decimalDifferences == 0 {
                    guard let offsets = reader.packed(count: run.count) else { return nil }
                    for (position, offset) in zip(run, offsets) {
                        samples[position].value = Double(unzigzag(first) &+ Int64(bitPattern: offset)) / scale
                    }
                } else {
                    guard let low = reader.varint(), let offsets = reader.packed(count: run.count - 1) else { return nil }
                    var mantissa = unzigzag(first)
                    samples[start].value = Double(mantissa) / scale
                    for (position, offset) in zip(run.dropFirst(), offsets) {
                        mantissa = mantissa &+ (unzigzag(low) &+ Int64(bitPattern: offset))
                        samples[position].value = Double(mantissa) / scale
                    }
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

        /// XOR values (``appendXOR(_:to:)``) into the samples at `run`; `false` when damaged.
        mutating func xor(into samples: inout [FieldSample], _ run: Range<Int>) -> Bool {
            guard let firstBits = u64() else { return false }
            var bits = firstBits
            samples[run.lowerBound].value = Double(bitPattern: bits)
            for position in run.dropFirst() {
                guard let header = byte() else { return false }
                if header != 0 {
                    let leading = Int(header >> 4)
                    let meaningful = Int(header & 0x0F)
                    guard meaningful >= 1, leading + meaningful <= 8 else { return false }
                    var xor: UInt64 = 0
                    for _ in 0..<meaningful {
                        guard let byte = byte() else { return false }
                        xor = xor << 8 | UInt64(byte)
                    }
                    xor <<= UInt64((8 - leading - meaningful) * 8)
                    bits ^= xor
                }
                samples[position].value = Double(bitPattern: bits)
            }
            return true
        }

        /// A width byte and `count` values of that many bits (``appendPacked(_:to:)``).
        mutating func packed(count: Int) -> [UInt64]? {
            guard let widthByte = byte(), widthByte <= 64, count >= 0 else { return nil }
            let width = Int(widthByte)
            guard width > 0 else { return [UInt64](repeating: 0, count: count) }
            let needed = (count * width + 7) / 8
            guard needed <= bytes.count - offset else { return nil }
            var values = [UInt64](repeating: 0, count: count)
            var bit = offset * 8
            for index in 0..<count {
                var value: UInt64 = 0
                var got = 0
                while got < width {
                    let byteIndex = bit >> 3
                    let shift = bit & 7
                    let take = min(8 - shift, width - got)
                    let part = (UInt64(bytes[byteIndex]) >> UInt64(shift)) & ((1 << UInt64(take)) - 1)
                    value |= part << UInt64(got)
                    got += take
                    bit += take
                }
                values[index] = value
            }
            offset += needed
            return values
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

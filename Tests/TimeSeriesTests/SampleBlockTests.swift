import CollectorTesting
import Foundation
import RocksDB
import Testing
import TimeSeries

@Suite("Sample blocks and rollups")
struct SampleBlockTests {
    static let minute: Int64 = 29_333_333 * 60_000_000_000

    static func sample(_ field: UInt16, second: Int64, _ value: Double) -> FieldSample {
        FieldSample(field: field, timestamp: minute + second * 1_000_000_000, value: value)
    }

    @Test func encodingRoundTripsAndRejectsDamage() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let samples = (0..<Int.random(in: 0...40, using: &generator)).map { _ in
                Self.sample(UInt16.random(in: 0...3, using: &generator), second: Int64.random(in: 0..<60, using: &generator), Double.random(in: -1e6...1e6, using: &generator))
            }
            let record = SampleBlock(samples: samples)
            let bytes = record.encoded()
            #expect(SampleBlock(decoding: bytes) == record)
            // Version 3 (varints) and the XOR-only version 2 are still read.
            #expect(SampleBlock(decoding: record.encodedVarint()) == record)
            #expect(SampleBlock(decoding: record.encodedXOR()) == record)
            // The fixed-width version 1 is still read.
            let fixed = record.encodedFixedWidth()
            #expect(fixed.count == 5 + record.samples.count * 18)
            #expect(SampleBlock(decoding: fixed) == record)
            #expect(SampleBlock(decoding: Array(bytes.dropLast())) == nil)
            #expect(SampleBlock(decoding: bytes + [0]) == nil)
            // Any corruption of one byte either fails to decode or decodes to a valid block.
            if bytes.count > 1 {
                var damaged = bytes
                damaged[Int.random(in: 1..<bytes.count, using: &generator)] ^= UInt8.random(in: 1...255, using: &generator)
                if let decoded = SampleBlock(decoding: damaged) {
                    #expect(zip(decoded.samples, decoded.samples.dropFirst()).allSatisfy { ($0.field, $0.timestamp) < ($1.field, $1.timestamp) })
                }
            }
        }
        #expect(SampleBlock(decoding: [2, 0, 0, 0, 0]) == nil)
        // Out-of-order entries are not a valid record.
        let twisted = [UInt8(1), 0, 0, 0, 2] + SampleBlock(samples: [Self.sample(1, second: 5, 1)]).encodedFixedWidth().dropFirst(5) + SampleBlock(samples: [Self.sample(0, second: 5, 1)]).encodedFixedWidth().dropFirst(5)
        #expect(SampleBlock(decoding: Array(twisted)) == nil)
        #expect(RollupKey(bytes: RollupKey(series: 42, interval: 7).bytes) == RollupKey(series: 42, interval: 7))
        #expect(RollupKey(series: 1, interval: 2).bytes.lexicographicallyPrecedes(RollupKey(series: 1, interval: 3).bytes))
        #expect(RollupKey(series: 1, interval: .max).bytes.lexicographicallyPrecedes(RollupKey(series: 2, interval: 0).bytes))
    }

    /// A series reporting once a minute with a constant status and a changing gauge: about one
    /// byte per timestamp and per unchanged value, instead of 18 bytes a sample.
    /// Found by `flashback-fuzz sample-block`: timestamps more than Int64.max ns apart encoded
    /// (wrapping delta) but did not decode (signed delta refused), so the block was lost.
    @Test func timestampsAtBothEndsOfInt64RoundTrip() {
        let samples = [
            FieldSample(field: 1, timestamp: .min, value: .nan),
            FieldSample(field: 1, timestamp: .max, value: .infinity),
            FieldSample(field: 2, timestamp: -1, value: -0.0),
            FieldSample(field: 2, timestamp: .max, value: .leastNonzeroMagnitude),
        ]
        let block = SampleBlock(samples: samples)
        let decoded = SampleBlock(decoding: block.encoded())
        #expect(decoded?.samples.map(\.timestamp) == block.samples.map(\.timestamp))
        #expect(decoded?.samples.map(\.value.bitPattern) == block.samples.map(\.value.bitPattern))
    }

    @Test func regularSeriesEncodeCompactly() {
        var samples: [FieldSample] = []
        for minute in 0..<60 {
            let time: Int64 = Self.minute + Int64(minute) * 60_000_000_000
            samples.append(FieldSample(field: 0, timestamp: time, value: 1))
            samples.append(FieldSample(field: 1, timestamp: time, value: Double(100 + minute % 7)))
        }
        let block = SampleBlock(samples: samples)
        let bytes = block.encoded()
        #expect(SampleBlock(decoding: bytes) == block)
        #expect(bytes.count < 60 * 2 * 4, "\(bytes.count) bytes for 120 samples")
        #expect(block.encodedFixedWidth().count == 5 + 120 * 18)
    }

    @Test func decimalsAndCountersKeepEveryBitInFewerBytes() throws {
        // Values as line protocol carries them: decimals with few digits, counters, and values
        // the decimal form cannot hold, which fall back to XOR for their field.
        let fields: [[Double]] = [
            (0..<60).map { Double(989 + $0 % 13) / 10 },              // latency with one decimal, as parsed
            (0..<60).map { Double(9_968 + ($0 * 7_919) % 30_000) },    // byte counters
            (0..<60).map { $0 % 9 == 0 ? 0 : 1 },                    // status
            [0.1 + 0.2, -0.0, 1e-300, .infinity, -.infinity, .nan, 9_007_199_254_740_993, 123_456.789_012_345_6],
            [-5, -4.75, 0, 1e13, -1e13, 3.5],                        // negative decimals, large jumps
            [Double(bitPattern: 0x7FF8_0000_0000_0001)],                 // a NaN payload
            [-0.0, 1, -0.0, 2],                                      // −0 among decimals (found by the fuzzer)
        ]
        var samples: [FieldSample] = []
        for (field, values) in fields.enumerated() {
            for (minute, value) in values.enumerated() {
                samples.append(FieldSample(field: UInt16(field), timestamp: Self.minute + Int64(minute) * 60_000_000_000, value: value))
            }
        }
        let block = SampleBlock(samples: samples)
        let bytes = block.encoded()
        let decoded = try #require(SampleBlock(decoding: bytes))
        #expect(decoded.samples.map(\.field) == block.samples.map(\.field))
        #expect(decoded.samples.map(\.timestamp) == block.samples.map(\.timestamp))
        #expect(decoded.samples.map(\.value.bitPattern) == block.samples.map(\.value.bitPattern))
        // Version 3 against the XOR-only version 2 of the same block: the three 60-sample
        // fields share their times and store mantissa differences.
        let xor = block.encodedXOR()
        #expect(SampleBlock(decoding: xor).map { $0.samples.map(\.value.bitPattern) } == block.samples.map(\.value.bitPattern))
        #expect(bytes.count * 2 < xor.count, "version 3: \(bytes.count) bytes, version 2: \(xor.count)")
    }

    /// A block built from a flush's samples (few fields, times mostly in order, some repeated)
    /// holds what a plain stable sort by (field, time) keeping the last of each pair gives,
    /// also with interleaved times and beyond 16 fields (the general path).
    @Test func blocksFromArrivalOrderEqualAStableSortKeepingTheLast() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<300 {
            let fieldCount = round % 10 == 0 ? 20 : Int.random(in: 1...5, using: &generator)
            var samples: [FieldSample] = []
            for line in 0..<Int.random(in: 0...60, using: &generator) {
                let second = round % 3 == 0 ? Int64.random(in: 0..<30, using: &generator) : Int64(line / 2)
                for field in 0..<fieldCount {
                    samples.append(Self.sample(UInt16(field * 3 % 7 + field), second: second, Double(Int.random(in: 0...9, using: &generator))))
                }
            }
            let reference = samples.enumerated().sorted {
                ($0.element.field, $0.element.timestamp, $0.offset) < ($1.element.field, $1.element.timestamp, $1.offset)
            }.reduce(into: [FieldSample]()) { out, pair in
                if let last = out.last, last.field == pair.element.field, last.timestamp == pair.element.timestamp {
                    out[out.count - 1] = pair.element
                } else {
                    out.append(pair.element)
                }
            }
            #expect(SampleBlock(samples: samples).samples == reference, "round \(round)")
        }
    }

    /// Version 4 packs a field's timestamps and decimal values into the bits their range needs:
    /// an hour of reports jittering by whole seconds, a gauge with one decimal, a counter and a
    /// constant take about a third less than version 3's varints, and come back bit for bit.
    @Test func version4PacksTimesAndDecimalsIntoTheirBits() throws {
        var samples: [FieldSample] = []
        for minute in 0..<60 {
            let time = Self.minute + Int64(minute) * 60_000_000_000 + Int64(minute * 7 % 3) * 1_000_000_000
            samples.append(FieldSample(field: 0, timestamp: time, value: Double(400 + minute * 37 % 300) / 10))
            samples.append(FieldSample(field: 1, timestamp: time, value: 1))
            samples.append(FieldSample(field: 2, timestamp: time, value: Double(1_000 + minute * 7_919 % 100_000)))
            // A counter that only grows: its differences are packed, not its values.
            samples.append(FieldSample(field: 3, timestamp: time, value: Double(5_000_000_000 + minute * 1_000 + minute % 2)))
        }
        let block = SampleBlock(samples: samples)
        let packed = block.encoded()
        let varints = block.encodedVarint()
        let decoded = try #require(SampleBlock(decoding: packed))
        #expect(decoded.samples.map(\.timestamp) == block.samples.map(\.timestamp))
        #expect(decoded.samples.map(\.value.bitPattern) == block.samples.map(\.value.bitPattern))
        #expect(packed.first == 4 && varints.first == 3)
        // Times: 8 + 3 + 5 + 1 + ⌈59 × 2 / 8⌉ bytes; values: 9, 0, 17 and 10 bits a sample.
        #expect(packed.count <= 300 && packed.count * 3 < varints.count * 2, "version 4: \(packed.count) bytes, version 3: \(varints.count)")
        // Regular times and a constant: a few bytes for the whole field.
        let regular = SampleBlock(samples: (0..<60).map { FieldSample(field: 1, timestamp: Self.minute + Int64($0) * 60_000_000_000, value: 1) })
        #expect(regular.encoded().count <= 25, "\(regular.encoded().count) bytes")
        #expect(SampleBlock(decoding: regular.encoded()) == regular)
    }

    @Test func damagedDecimalAndSharedTimeFieldsAreRefusedOrDecodeWithoutTrapping() {
        var samples: [FieldSample] = []
        for minute in 0..<20 {
            let time: Int64 = Self.minute + Int64(minute) * 60_000_000_000
            for field in 0..<3 {
                samples.append(FieldSample(field: UInt16(field), timestamp: time, value: Double(minute * 10 + field) / 4))
            }
        }
        let block = SampleBlock(samples: samples)
        let bytes = block.encoded()
        #expect(SampleBlock(decoding: bytes) == block)
        for position in 1..<bytes.count {
            for flip: UInt8 in [0x01, 0x80, 0xFF] {
                var damaged = bytes
                damaged[position] ^= flip
                if let decoded = SampleBlock(decoding: damaged) {
                    #expect(zip(decoded.samples, decoded.samples.dropFirst()).allSatisfy { ($0.field, $0.timestamp) < ($1.field, $1.timestamp) })
                }
            }
        }
        // A field claiming the previous field's times with another sample count.
        #expect(SampleBlock(decoding: [3, 2, 0, 0, 1, 1] + [UInt8](repeating: 0, count: 8) + [0] + [0, 1, 2, 0x81, 2, 2]) == nil)
    }

    @Test func laterValueWinsAndDuplicatesCountOnce() throws {
        let record = SampleBlock(samples: [Self.sample(0, second: 1, 10), Self.sample(0, second: 2, 20), Self.sample(0, second: 1, 11)])
        #expect(record.samples.map(\.value) == [11, 20])
        let again = SampleBlock.merging([record, record, record])
        #expect(again == record)
        let rollup = try #require(record.rollup(field: 0))
        #expect(rollup.count == 2)
        #expect(rollup.sum == 31)
        #expect(rollup.min == 11 && rollup.max == 20)
        #expect(rollup.first == 11 && rollup.last == 20)
        #expect(record.rollup(field: 9) == nil)
    }

    @Test func aDayIsTheMergeOfItsMinutes() {
        var generator = SystemRandomNumberGenerator()
        var minutes: [SampleBlock] = []
        var all: [FieldSample] = []
        for minute in 0..<30 {
            let samples = (0..<Int.random(in: 1...5, using: &generator)).map { index in
                FieldSample(field: 0, timestamp: Self.minute + Int64(minute) * 60_000_000_000 + Int64(index) * 1_000_000_000,
                            value: Double(Int.random(in: -1...3, using: &generator)))
            }
            minutes.append(SampleBlock(samples: samples))
            all += samples
        }
        var day = minutes[0].rollup(field: 0)!
        for record in minutes.dropFirst() { day.merge(record.rollup(field: 0)!) }
        let direct = SampleBlock(samples: all).rollup(field: 0)!
        #expect(day == direct)
        #expect(day.onlineCount == UInt64(all.filter { $0.value > 0 }.count))
    }

    @Test func rocksDBMergesAreIdempotentAndOrderIndependent() throws {
        let directory = TemporaryDirectory(prefix: "minutes")
        func open(_ name: String) throws -> (Database, ColumnFamily) {
            let db = try Database.open(path: directory.appending(name), columnFamilies: [ColumnFamilyDescriptor(name: "minute", mergeOperator: SampleBlockMergeOperator())])
            return (db, try db.columnFamily("minute"))
        }
        let key = RollupKey(series: 7, interval: RollupKey.minute(ofNanoseconds: Self.minute)).bytes
        let early = SampleBlock(samples: [Self.sample(0, second: 5, 1), Self.sample(1, second: 5, 100)])
        let late = SampleBlock(samples: [Self.sample(0, second: 50, 0), Self.sample(1, second: 50, 300)])

        // Retry: the same batch three times.
        let (retried, retriedCF) = try open("retried")
        for _ in 0..<3 {
            let batch = WriteBatch()
            batch.merge(key, early.encoded(), in: retriedCF)
            batch.merge(key, late.encoded(), in: retriedCF)
            try retried.write(batch)
        }
        // In order, once.
        let (once, onceCF) = try open("once")
        try once.merge(key, early.encoded(), in: onceCF)
        try once.merge(key, late.encoded(), in: onceCF)
        // Late data: the later half first, flushed to disk, then the earlier half.
        let (reordered, reorderedCF) = try open("reordered")
        try reordered.merge(key, late.encoded(), in: reorderedCF)
        try reordered.flush(reorderedCF)
        try reordered.merge(key, early.encoded(), in: reorderedCF)

        let expected = try #require(try once.get(key, in: onceCF))
        #expect(try retried.get(key, in: retriedCF) == expected)
        #expect(try reordered.get(key, in: reorderedCF) == expected)
        let record = try #require(SampleBlock(decoding: expected))
        #expect(record.rollup(field: 1)?.count == 2)
        #expect(record.rollup(field: 1)?.sum == 400)
        #expect(record.rollup(field: 0)?.onlineCount == 1)

        // A resent sample with a new value replaces the old one, through compaction and reopen.
        try reordered.merge(key, SampleBlock(samples: [Self.sample(1, second: 5, 150)]).encoded(), in: reorderedCF)
        try reordered.flush(reorderedCF)
        try reordered.compact(reorderedCF)
        reordered.close()
        let (reopened, reopenedCF) = try open("reordered")
        let finalBytes = try #require(try reopened.get(key, in: reopenedCF))
        let final = try #require(SampleBlock(decoding: finalBytes))
        #expect(final.rollup(field: 1)?.sum == 450)
        #expect(final.rollup(field: 1)?.count == 2)
        #expect(final.rollup(field: 1)?.first == 150)
        retried.close()
        once.close()
        reopened.close()
    }

    /// A samples family written by the previous format (version 2 values and operands) reads
    /// the same, takes new version 3 operands on top, and is rewritten in version 3 by a
    /// compaction without changing a sample.
    @Test func blocksOfTheXORVersionAreReadMergedAndRewritten() throws {
        let directory = TemporaryDirectory(prefix: "samples-v2")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [ColumnFamilyDescriptor(name: "samples", mergeOperator: SampleBlockMergeOperator())])
        defer { db.close() }
        let family = try db.columnFamily("samples")
        let key = RollupKey(series: 7, interval: 1).bytes
        var written: [FieldSample] = []
        for second in 0..<30 {
            let latency: Double = 98.5 + Double(second) / 10
            written.append(Self.sample(0, second: Int64(second), latency))
            written.append(Self.sample(1, second: Int64(second), Double(second * 1_000)))
        }
        let old = SampleBlock(samples: written)
        try db.put(key, old.encodedXOR(), in: family)
        try db.flush(family)
        try db.merge(key, SampleBlock(samples: [Self.sample(1, second: 40, 17)]).encodedXOR(), in: family)
        try db.merge(key, SampleBlock(samples: [Self.sample(0, second: 45, 101.25), Self.sample(1, second: 0, 5)]).encoded(), in: family)
        let expected = SampleBlock.merging([old, SampleBlock(samples: [Self.sample(1, second: 40, 17)]),
                                            SampleBlock(samples: [Self.sample(0, second: 45, 101.25), Self.sample(1, second: 0, 5)])])
        #expect(expected.samples.count == 62)
        #expect(try db.get(key, in: family).flatMap { SampleBlock(decoding: $0) } == expected)
        try db.flush(family)
        try db.compact(family)
        let rewritten = try #require(try db.get(key, in: family))
        #expect(rewritten.first == 4)
        #expect(SampleBlock(decoding: rewritten) == expected)
    }

    @Test func recordsAreBounded() throws {
        let directory = TemporaryDirectory(prefix: "minutes-cap")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [ColumnFamilyDescriptor(name: "minute", mergeOperator: SampleBlockMergeOperator(maxSamples: 10))])
        let family = try db.columnFamily("minute")
        let key = RollupKey(series: 1, interval: 1).bytes
        try db.merge(key, SampleBlock(samples: (0..<30).map { Self.sample(0, second: Int64($0), Double($0)) }).encoded(), in: family)
        let cappedBytes = try #require(try db.get(key, in: family))
        let capped = try #require(SampleBlock(decoding: cappedBytes))
        #expect(capped.samples.count == 10)
        #expect(capped.samples.map { $0.value } == (20..<30).map { Double($0) })
        db.close()
    }
}

@Suite("Retention")
struct RetentionTests {
    @Test func compactionDropsRecordsPastTheRetention() throws {
        let directory = TemporaryDirectory(prefix: "retention")
        let clock = ManualClock(Date(timeIntervalSince1970: 1_760_000_000))
        let filter = RetentionFilter(retention: 3600, clock: clock.source)
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [
            ColumnFamilyDescriptor(name: "minute", mergeOperator: SampleBlockMergeOperator(), compactionFilter: filter)])
        let family = try db.columnFamily("minute")
        let nowMinute = UInt32(1_760_000_000 / 60)
        let record = SampleBlock(samples: [FieldSample(field: 0, timestamp: 1, value: 1)]).encoded()
        for (series, age) in [(1, 120), (1, 59), (2, 61), (2, 1)] as [(UInt64, UInt32)] {
            try db.put(RollupKey(series: series, interval: nowMinute - age).bytes, record, in: family)
        }
        try db.flush(family)
        try db.compact(family)
        var remaining: [UInt32] = []
        try db.scan(family) { key, _ in
            remaining.append(nowMinute - (RollupKey(bytes: Array(key))?.interval ?? 0))
            return true
        }
        #expect(remaining.sorted() == [1, 59])
        // Time passes: the next compaction drops what aged out meanwhile.
        clock.advance(by: 3600)
        try db.put(RollupKey(series: 3, interval: nowMinute + 59).bytes, record, in: family)
        try db.flush(family)
        try db.compact(family)
        var left = 0
        try db.scan(family) { _, _ in left += 1; return true }
        #expect(left == 1)
        db.close()
    }

    /// Blocks are written with merges (operands, partly folded into values by earlier
    /// compactions): one forced compaction, as `enforceRetention` runs, still drops every expired
    /// block, whatever mix of operands and merged values the block family holds.
    @Test func oneCompactionDropsExpiredMergeWrittenBlocks() throws {
        let directory = TemporaryDirectory(prefix: "retention-merge")
        let clock = ManualClock(Date(timeIntervalSince1970: 1_760_000_000))
        let filter = RetentionFilter(minutesPerInterval: 60, retention: 35 * 86_400, clock: clock.source)
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [
            ColumnFamilyDescriptor(name: "samples", mergeOperator: SampleBlockMergeOperator(), compactionFilter: filter)])
        let family = try db.columnFamily("samples")
        let nowHour = UInt32(1_760_000_000 / 3600)
        func merge(hour: UInt32, series: UInt64, value: Double) throws {
            let block = SampleBlock(samples: [FieldSample(field: 0, timestamp: Int64(hour) * 3_600_000_000_000 + Int64(value), value: value)])
            try db.merge(RollupKey(series: series, interval: hour).bytes, block.encoded(), in: family)
        }
        // Hours 40 days old (expired) and 1 day old (kept), for 20 series; several operands each,
        // spread over SST files and already partly merged by an earlier compaction.
        for round in 0..<3 {
            for series in 0..<20 as Range<UInt64> {
                try merge(hour: nowHour - 40 * 24, series: series, value: Double(round))
                try merge(hour: nowHour - 24, series: series, value: Double(round))
            }
            try db.flush(family)
            if round == 1 { try db.compact(family) }
        }
        let database = db
        func hoursLeft() throws -> [UInt32] {
            var hours: [UInt32] = []
            try database.scan(family) { key, _ in
                hours.append(nowHour - (RollupKey(bytes: Array(key))?.interval ?? 0))
                return true
            }
            return hours
        }
        #expect(try hoursLeft().count == 40)
        try db.compact(family)
        #expect(try hoursLeft() == Array(repeating: 24, count: 20))
        db.close()
    }
}

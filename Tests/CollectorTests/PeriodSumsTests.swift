import Exposition
import Foundation
@testable import Stats
import Testing
import TimeSeries

/// The traffic rows' per-period sums: the dense buffer and the dictionary give the same rows, in
/// time order, and the buffer starts clean for the next group.
@Suite("Stats: per-period traffic sums")
struct PeriodSumsTests {
    static func rollup(_ sum: Double, count: UInt64 = 1) -> FieldRollup {
        FieldRollup(count: count, sum: sum, min: sum, max: sum, first: sum, firstTime: 0, last: sum, lastTime: 0, onlineCount: 0, onlineMinutes: 0)
    }

    static func drained(_ sums: inout PeriodSums) -> [String] {
        var out: [String] = []
        sums.drain { index, value in
            out.append("\(index) \(value.upload) \(value.download) \(value.size) \(value.latencySum) \(value.latencyCount)")
        }
        return out
    }

    @Test func denseAndSparseSumsAgreeAndComeOutInOrder() {
        var generator = SystemRandomNumberGenerator()
        var dense = PeriodSums(periods: 400)
        var sparse = PeriodSums(periods: PeriodSums.denseLimit + 1)
        for group in 0..<5 {
            var reference: [Int: [Double]] = [:]
            for _ in 0..<(200 + group * 50) {
                let period = Int.random(in: 0..<400, using: &generator)
                let field = Int.random(in: 0..<5, using: &generator)
                let value = Double(Int.random(in: -1000...1000, using: &generator))
                dense.add(period: period, field: field, Self.rollup(value))
                sparse.add(period: period, field: field, Self.rollup(value))
                var row = reference[period] ?? [0, 0, 0, 0, 0]
                if field < 4 { row[field] += value }
                if field == 3 { row[4] += 1 }
                reference[period] = row
            }
            let expected = reference.keys.sorted().map { period -> String in
                let row = reference[period] ?? []
                return "\(period) \(row[0]) \(row[1]) \(row[2]) \(row[3]) \(UInt64(row[4]))"
            }
            #expect(Self.drained(&dense) == expected)
            #expect(Self.drained(&sparse) == expected)
        }
        // Drained: nothing left for the next group.
        #expect(Self.drained(&dense).isEmpty)
        #expect(Self.drained(&sparse).isEmpty)
    }
}

/// Integers as the JSON answers and the Prometheus export write them: the same digits as Swift's
/// own description, at the edges and at random.
@Suite("Exposition: integer digits")
struct IntegerDigitsTests {
    @Test func digitsMatchTheStandardLibrary() {
        var values: [Int64] = [0, 1, 9, 10, 11, 99, 100, -1, -9, -10, 1_000_000_007, .max, .min, .max - 1, .min + 1]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Int64.random(in: .min ... .max, using: &generator) >> Int64.random(in: 0...62, using: &generator)) }
        for value in values {
            var out: [UInt8] = [UInt8(ascii: "x")]
            Exposition.appendInteger(value, to: &out)
            #expect(String(decoding: out, as: UTF8.self) == "x\(value)")
        }
    }
}

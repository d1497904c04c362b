import Benchmark
import CollectorTesting
import Foundation
import RocksDB

/// Adds little-endian UInt64 operands: the cheapest possible merge, so the figures show the cost
/// of the RocksDB write path and the Swift callback boundary rather than of rollup arithmetic.
struct AddMergeOperator: MergeOperator {
    let name = "bench.add.v1"

    func fullMerge(key: UnsafeRawBufferPointer, existingValue: UnsafeRawBufferPointer?, operands: MergeOperands) -> [UInt8]? {
        var total: UInt64 = existingValue.map { $0.count == 8 ? $0.loadUnaligned(as: UInt64.self) : 0 } ?? 0
        for operand in operands where operand.count == 8 { total &+= operand.loadUnaligned(as: UInt64.self) }
        return withUnsafeBytes(of: total) { Array($0) }
    }

    func partialMerge(key: UnsafeRawBufferPointer, operands: MergeOperands) -> [UInt8]? {
        fullMerge(key: key, existingValue: nil, operands: operands)
    }
}

/// 1,000 series × ascending time, 16-byte keys (series id ‖ timestamp), 48-byte values: the
/// shape of the collector's minute rollups.
func key(series: UInt64, time: UInt64) -> [UInt8] {
    withUnsafeBytes(of: series.bigEndian) { Array($0) } + withUnsafeBytes(of: time.bigEndian) { Array($0) }
}

let batchSize = 1_000
let seriesCount: UInt64 = 1_000

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 1_000)

    Benchmark("WriteBatch put, 1000 ops per batch, WAL on, sync off") { benchmark in
        let directory = TemporaryDirectory(prefix: "bench-put")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [ColumnFamilyDescriptor(name: "data")])
        let family = try db.columnFamily("data")
        let value = [UInt8](repeating: 7, count: 48)
        var time: UInt64 = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let batch = WriteBatch()
            for index in 0..<batchSize {
                batch.put(key(series: UInt64(index) % seriesCount, time: time), value, in: family)
            }
            time += 1
            try db.write(batch)
        }
        benchmark.stopMeasurement()
        db.close()
    }

    Benchmark("WriteBatch merge, 1000 ops per batch, WAL on, sync off") { benchmark in
        let directory = TemporaryDirectory(prefix: "bench-merge")
        let db = try Database.open(path: directory.appending("db"), columnFamilies: [ColumnFamilyDescriptor(name: "data", mergeOperator: AddMergeOperator())])
        let family = try db.columnFamily("data")
        let one = withUnsafeBytes(of: UInt64(1)) { Array($0) }
        var minute: UInt64 = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let batch = WriteBatch()
            for index in 0..<batchSize {
                batch.merge(key(series: UInt64(index) % seriesCount, time: minute), one, in: family)
            }
            // A new minute every 60 batches: most merges land on keys that already have operands.
            if iteration % 60 == 59 { minute += 1 }
            try db.write(batch)
        }
        benchmark.stopMeasurement()
        db.close()
    }
}

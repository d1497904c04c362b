import Benchmark
import Ingest

/// A 10,000-line body of the load driver's shape (../shared/bench/gen_bodies.py): measurement
/// `node_bucket`, tags node/bucket/region, four fields, nanosecond timestamps.
func makeBody(lines: Int) -> [UInt8] {
    let regions = ["us-east-1", "us-west-2", "eu-central-1", "eu-west-1", "ap-southeast-1", "ap-northeast-1", "sa-east-1", "af-south-1"]
    var text = ""
    text.reserveCapacity(lines * 140)
    for index in 0..<lines {
        let node = index / 10
        let bucket = index % 10
        let region = regions[(node * 7) % regions.count]
        text += "node_bucket,node=node-\(node),bucket=bkt-\(bucket),region=\(region) latency_ms=\(Double(index % 97) + 0.5),online=1i,upl_bytes=\(index * 131)i,dwl_bytes=\(index * 17)i 1795600000000000000\n"
    }
    return Array(text.utf8)
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(5),
        maxIterations: 1_000)

    let body = makeBody(lines: 10_000)

    Benchmark("Line protocol parse, 10,000 lines (\(body.count / 1024) KiB)") { benchmark in
        let parser = LineProtocolParser()
        for _ in benchmark.scaledIterations {
            let result = body.withUnsafeBytes { parser.parse($0) }
            blackHole(result.points.count)
        }
    }

    Benchmark("Line protocol parse, 10,000 known series (warm series-section cache)") { benchmark in
        let parser = LineProtocolParser(seriesCache: SeriesSectionCache())
        _ = body.withUnsafeBytes { parser.parse($0) }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            let result = body.withUnsafeBytes { parser.parse($0) }
            blackHole(result.points.count)
        }
        benchmark.stopMeasurement()
    }
}

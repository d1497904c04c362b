import CollectorHTTP
import CollectorTesting
import CoreMetrics
import Exposition
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing
import TimeSeries

/// `GET /metrics`: the exposition formats, the swift-metrics backend, the fleet's families
/// (from the stats fixtures), promtool's verdict and the scrape token.
@Suite("Metrics export")
struct MetricsExportTests {
    typealias Label = MetricSample.Label

    @Test func renderingIsSortedEscapedAndFollowsBothFormats() {
        let families = [
            MetricFamily.gauge("zeta_bytes", "Last.", [([Label("b", "2"), Label("a", "x")], 1.5), ([Label("a", "w\"q\\\n")], 2)]),
            MetricFamily.counter("alpha_total", "First \\ help\nline.", [([], 3)]),
            MetricFamily(name: "mid_seconds", help: "Histogram.", type: .histogram, samples: [
                MetricSample(suffix: "_bucket", labels: [Label("le", "0.5")], value: 1),
                MetricSample(suffix: "_bucket", labels: [Label("le", "+Inf")], value: 2),
                MetricSample(suffix: "_sum", value: 0.75),
                MetricSample(suffix: "_count", value: 2),
            ]),
            MetricFamily.gauge("empty", "No samples: left out.", []),
        ]
        let text = String(decoding: Exposition.render(families, format: .prometheus), as: UTF8.self)
        #expect(text == """
            # HELP alpha_total First \\\\ help\\nline.
            # TYPE alpha_total counter
            alpha_total 3
            # HELP mid_seconds Histogram.
            # TYPE mid_seconds histogram
            mid_seconds_bucket{le="0.5"} 1
            mid_seconds_bucket{le="+Inf"} 2
            mid_seconds_sum 0.75
            mid_seconds_count 2
            # HELP zeta_bytes Last.
            # TYPE zeta_bytes gauge
            zeta_bytes{a="w\\"q\\\\\\n"} 2
            zeta_bytes{a="x",b="2"} 1.5

            """)
        let open = String(decoding: Exposition.render(families, format: .openMetrics), as: UTF8.self)
        #expect(open.hasPrefix("# HELP alpha First \\\\ help\\nline.\n# TYPE alpha counter\nalpha_total 3\n"))
        #expect(open.hasSuffix("# EOF\n"))
        #expect(ExpositionFormat(accept: "application/openmetrics-text;version=1.0.0,text/plain;q=0.5") == .openMetrics)
        #expect(ExpositionFormat(accept: "*/*") == .prometheus)
        #expect(Exposition.sanitize("9bad-name.x") == "_9bad_name_x")
    }

    /// Every written value parses back to the same double (what Prometheus reads), whichever
    /// path wrote it: integer digits, up to six exact decimals, or the shortest representation.
    @Test func valuesParseBackExactly() {
        func written(_ value: Double) -> String {
            var out: [UInt8] = []
            Exposition.appendValue(value, to: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(written(0.042) == "0.042")
        #expect(written(-0.5) == "-0.5")
        #expect(written(1_773_187_140.123) == "1773187140.123")
        #expect(written(-3) == "-3")
        #expect(written(.infinity) == "+Inf")
        #expect(written(-.infinity) == "-Inf")
        #expect(written(.nan) == "NaN")
        var generator = SystemRandomNumberGenerator()
        var values: [Double] = [0.1, 0.2, 0.3, 1e-7, 123_456.789_012_3, 999_999_999.999_999, 1e9 + 0.5, 5e-324, .greatestFiniteMagnitude, -0.000_001]
        for _ in 0..<20_000 {
            let scales: [Double] = [1e-9, 1e-3, 1, 1e3, 1e6, 1e9, 1e12]
            let scale = scales[Int.random(in: 0..<scales.count, using: &generator)]
            values.append(Double.random(in: -1...1, using: &generator) * scale)
            // Millisecond timestamps and millisecond latencies in seconds, as the export writes.
            values.append(Double(Int64.random(in: 1_600_000_000_000...1_900_000_000_000, using: &generator)) / 1000)
            values.append(Double(Int.random(in: 0...100_000, using: &generator)) / 1000)
        }
        for value in values {
            let text = written(value)
            #expect(Double(text) == value, "\(value) written as \(text)")
        }
    }

    @Test func theSwiftMetricsBackendKeepsCountersGaugesAndHistograms() {
        let registry = MetricsRegistry(timerBuckets: [0.001, 0.01])
        registry.describe("requests_total", "Requests.")
        let counter = Counter(label: "requests_total", dimensions: [("code", "200")], factory: registry)
        counter.increment(by: 3)
        Counter(label: "requests_total", dimensions: [("code", "200")], factory: registry).increment()
        Gauge(label: "queue", factory: registry).record(7)
        let timer = Timer(label: "latency_seconds", factory: registry)
        timer.recordNanoseconds(500_000)
        timer.recordNanoseconds(5_000_000)
        timer.recordNanoseconds(50_000_000)
        let text = String(decoding: Exposition.render(registry.families(), format: .prometheus), as: UTF8.self)
        #expect(text.contains("# HELP requests_total Requests.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 4\n"))
        #expect(text.contains("queue 7\n"))
        #expect(text.contains("latency_seconds_bucket{le=\"0.001\"} 1\nlatency_seconds_bucket{le=\"0.01\"} 2\nlatency_seconds_bucket{le=\"+Inf\"} 3\nlatency_seconds_sum 0.0555\nlatency_seconds_count 3\n"))
    }

    /// Runs `promtool check metrics` on `text`; its output, empty when it had nothing to say.
    static func promtool(_ text: String) async throws -> (status: Int32, output: String) {
        let directory = TemporaryDirectory(prefix: "promtool")
        let file = directory.appending("scrape.txt")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await runCommand("/bin/sh", ["-c", "promtool check metrics < \"$SCRAPE\" 2>&1"], environment: ["SCRAPE": file, "PATH": "/usr/bin:/bin"])
        return (result.status, result.standardOutput)
    }
}

extension StatsRoutesTests {
    @Test func metricsExportTheFleet() async throws {
        try await withFleet { fleet in
            try fleet.store.flush()
            let response = try await fleet.client.execute(uri: "/metrics", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            let text = String(buffer: response.body)
            let n1 = fleet.id("n1"), n2 = fleet.id("n2"), p1 = fleet.id("p1"), bA1 = fleet.id("bA1"), bA2 = fleet.id("bA2")
            // Node × bucket status after the liveness silences, and the latest latency.
            #expect(text.contains("flashback_node_bucket_status{bucket=\"\(bA1)\",node=\"\(n1)\",organization=\"org-a\"} 1\n"))
            #expect(text.contains("flashback_node_bucket_status{bucket=\"\(bA1)\",node=\"\(n2)\",organization=\"org-a\"} 0\n"))
            #expect(text.contains("flashback_node_bucket_status{bucket=\"\(bA2)\",node=\"\(n2)\",organization=\"org-a\"} -1\n"))
            #expect(text.contains("flashback_node_bucket_up{bucket=\"\(bA1)\",node=\"\(p1)\",organization=\"\"} 1\n"))
            #expect(text.contains("flashback_node_bucket_latency_seconds{bucket=\"\(bA1)\",node=\"\(n1)\",organization=\"org-a\"} 0.032\n"))
            // Traffic since start: the retried /write counted once (same flush), plus n1's report.
            #expect(text.contains("flashback_bucket_upload_bytes_total{bucket=\"\(bA1)\",organization=\"org-a\"} 1900\n"))
            #expect(text.contains("flashback_bucket_size_change_bytes{bucket=\"b-free\",organization=\"org-a\"} -2\n"))
            #expect(text.contains("flashback_nodes{organization=\"org-a\"} 2\n"))
            #expect(text.contains("flashback_buckets{organization=\"org-a\"} 2\n"))
            #expect(text.contains("# TYPE flashback_rocksdb_sst_bytes gauge\n"))
            #expect(text.contains("flashback_collector_build_info{swift=\"6.3\",version=\"test\"} 1\n"))
            // Every family has HELP and TYPE, no series twice, and promtool agrees.
            let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ").dropLast().joined(separator: " ") }
            #expect(Set(samples).count == samples.count)
            let verdict = try await MetricsExportTests.promtool(text)
            #expect(verdict.status == 0, "\(verdict.output)")
            #expect(verdict.output.isEmpty, "\(verdict.output)")

            // A series that appears after a scrape shows in the next one (the export keeps the
            // pair order only while no series or node appears).
            let fresh = SeriesPoint(organization: "org-a", measurement: "node_status", tags: [(key: "bucket", value: "b-new"), (key: "node", value: n1)],
                                    fields: [(name: "status", value: 1), (name: "latency_ms", value: 5)],
                                    timestamp: Int64(StatsRoutesTests.now.timeIntervalSince1970 - 30) * 1_000_000_000)
            #expect(try fleet.store.write([fresh], now: StatsRoutesTests.now, sync: false).stored == 2)
            let again = String(buffer: try await fleet.client.execute(uri: "/metrics", method: .get).body)
            #expect(again.contains("flashback_node_bucket_status{bucket=\"b-new\",node=\"\(n1)\",organization=\"org-a\"} 1\n"))
            #expect(again.contains("flashback_node_bucket_latency_seconds{bucket=\"b-new\",node=\"\(n1)\",organization=\"org-a\"} 0.005\n"))

            var headers = HTTPFields()
            headers[.accept] = "application/openmetrics-text; version=1.0.0"
            let openMetrics = try await fleet.client.execute(uri: "/metrics", method: .get, headers: headers)
            #expect(openMetrics.headers[.contentType] == "application/openmetrics-text; version=1.0.0; charset=utf-8")
            #expect(String(buffer: openMetrics.body).hasSuffix("# EOF\n"))
            #expect(String(buffer: openMetrics.body).contains("# TYPE flashback_bucket_upload_bytes counter\n"))
        }
    }
}

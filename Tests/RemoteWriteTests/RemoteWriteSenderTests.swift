import AsyncHTTPClient
import CollectorTesting
import Foundation
import Logging
import Metrics
import MetricsTestKit
import RocksDB
import ServiceLifecycle
import Testing
import TimeSeries
@testable import RemoteWrite

@Suite("Remote-write sender: spec retries, drops, headers, resumes")
struct RemoteWriteSenderTests {
    static let start: Int64 = 1_773_100_800
    static let now = Date(timeIntervalSince1970: TimeInterval(start + 3600))

    static func point(_ second: Int64) -> SeriesPoint {
        SeriesPoint(organization: "acme", measurement: "bucket_traffic", tags: [(key: "bucket", value: "b1")],
                    fields: [(name: "upl_bytes", value: Double(second))], timestamp: (start + second) * 1_000_000_000)
    }

    @Test func classifiesAnswersAsTheSpecSays() {
        #expect(RemoteWriteOutcome.classify(status: 200) == .sent)
        #expect(RemoteWriteOutcome.classify(status: 204) == .sent)
        #expect(RemoteWriteOutcome.classify(status: 429) == .retried)
        #expect(RemoteWriteOutcome.classify(status: 500) == .retried)
        #expect(RemoteWriteOutcome.classify(status: 503) == .retried)
        #expect(RemoteWriteOutcome.classify(status: 400) == .dropped)
        #expect(RemoteWriteOutcome.classify(status: 404) == .dropped)
        #expect(RemoteWriteOutcome.classify(status: 413) == .dropped)
    }

    @Test func destinationsParseCredentialsAndHeaders() throws {
        let basic = try RemoteWriteDestination(parsing: "https://fleet:s%3Acret@tsdb.example.com/api/v1/push?tenant=1")
        #expect(basic.url == "https://tsdb.example.com/api/v1/push?tenant=1")
        #expect(basic.name == "https://tsdb.example.com/api/v1/push")
        #expect(basic.headers.map(\.value) == ["Basic " + Data("fleet:s:cret".utf8).base64EncodedString()])
        let bearer = try RemoteWriteDestination(parsing: "http://127.0.0.1:8428/api/v1/write", bearerToken: "abc\n",
                                                extraHeaders: ["X-Scope-OrgID: fleet"])
        #expect(bearer.headers.map { "\($0.name): \($0.value)" } == ["Authorization: Bearer abc", "X-Scope-OrgID: fleet"])
        #expect(throws: RemoteWriteConfigurationError.self) { try RemoteWriteDestination(parsing: "ftp://x/y") }
        #expect(throws: RemoteWriteConfigurationError.self) { try RemoteWriteDestination(parsing: "http://x/y", extraHeaders: ["Content-Encoding: gzip"]) }
        #expect(throws: RemoteWriteConfigurationError.self) { try RemoteWriteDestination(parsing: "http://x/y", extraHeaders: ["X-A: b\r\nX-B: c"]) }
        #expect(throws: RemoteWriteConfigurationError.self) { try RemoteWriteDestination(parsing: "http://u:p@x/y", bearerToken: "t") }
        // A credential never shows in the message.
        do {
            _ = try RemoteWriteDestination(parsing: "gopher://user:hunter2@host/")
        } catch {
            #expect(!error.description.contains("hunter2"))
        }
    }

    @Test func retriesServerErrorsAndThrottlingDropsOtherClientErrorsAndMovesOnOnlyAfterAnAnswer() async throws {
        let directory = TemporaryDirectory(prefix: "rw-sender")
        // Batch 1: 500, 429, then 204 — sent three times, stored once. Batch 2: 400 — dropped,
        // and the sender moves on. Batch 3: 204.
        let receiver = try await ScriptedRemoteWriteReceiver(script: [(500, nil), (429, 0), (204, nil), (400, nil)])
        var settings = TimeSeriesSettings()
        let destination = try RemoteWriteDestination(parsing: receiver.url, bearerToken: "secret-token")
        settings.remoteWriteDestinations = [destination.name]
        let db = try Database.open(path: directory.appending("db"), columnFamilies: TimeSeriesStore.columnFamilies())
        defer { db.close() }
        let store = try TimeSeriesStore(database: db, settings: settings)
        let outbox = try #require(store.outbox)
        let metricsFactory = TestMetrics()
        var sending = RemoteWriteSettings()
        sending.maxSamplesPerRequest = 2
        sending.minBackoff = .milliseconds(1)
        sending.maxBackoff = .milliseconds(20)
        for second in 0..<6 { _ = try store.write([Self.point(Int64(second))], now: Self.now, sync: false) }
        let sender = RemoteWriteSender(destination: destination, outbox: outbox, index: store.index, client: .shared, settings: sending,
                                       metrics: RemoteWriteMetrics(maxBacklogBytes: 1 << 30, factory: metricsFactory), logger: Logger(label: "test"))
        let running = Task { try await sender.run() }
        let received = await receiver.waitForRequests(5)
        // The sender moves its cursor after the answer arrived: wait for that, not for time.
        #expect(await outbox.waitUntilDrained(destination.name))
        running.cancel()
        _ = try? await running.value
        await receiver.close()

        #expect(received.map(\.status) == [500, 429, 204, 400, 204])
        // The same samples until a 2xx or a final 4xx; nothing more once the outbox is drained.
        #expect(received.map { $0.series.flatMap { $0.samples.map(\.1) } } == [[0, 1], [0, 1], [0, 1], [2, 3], [4, 5]])
        let first = try #require(received.first)
        #expect(first.headers["content-encoding"] == "snappy")
        #expect(first.headers["content-type"] == "application/x-protobuf")
        #expect(first.headers["x-prometheus-remote-write-version"] == "0.1.0")
        #expect(first.headers["authorization"] == "Bearer secret-token")
        #expect(try outbox.entries(for: destination.name, maxSamples: 100).isEmpty)
        func count(_ outcome: String) throws -> Int64 {
            try metricsFactory.expectCounter("flashback_remote_write_samples_total", [("destination", destination.name), ("outcome", outcome)]).totalValue
        }
        #expect(try count("sent") == 4)
        // Per attempt that will be repeated: two attempts of two samples.
        #expect(try count("retried") == 4)
        #expect(try count("dropped") == 2)
    }
}

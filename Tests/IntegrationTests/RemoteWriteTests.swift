import AsyncHTTPClient
import CollectorAuth
import CollectorModel
import CollectorTesting
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// Remote write from the real binary into real receivers: VictoriaMetrics (Debian's
/// `victoria-metrics`, the API of vminsert) and Prometheus with its remote-write receiver.
@Suite("remote write: the real binary into VictoriaMetrics and Prometheus")
struct RemoteWriteIntegrationTests {
    let directory = TemporaryDirectory(prefix: "remote-write")

    /// The value of `name{labels}` in the collector's `/metrics`, or `nil`.
    static func metric(_ collector: CollectorProcess, _ series: String, auth: [(String, String)]) async throws -> Double? {
        let body = try await collector.get("/metrics", headers: auth).body
        for line in body.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// `count` lines of `bucket_traffic` with distinct times from `base` (nanoseconds).
    static func trafficLines(_ count: Int, base: Int64, offset: Int = 0) -> String {
        (0..<count).map { "bucket_traffic,bucket=b\(($0 + offset) % 3),repo=r1,host=h1 upl_bytes=\($0 + offset),requests=1 \(base + Int64($0 + offset) * 1_000_000)" }
            .joined(separator: "\n")
    }

    @Test func everyAcceptedSampleReachesVictoriaMetricsAndPrometheusUnchanged() async throws {
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        // Prometheus as a second, independent reader of the wire format; out-of-order writes are
        // allowed as docs/cluster.md says (a node's retry may arrive after a newer sample).
        let promPort = freeLoopbackPort()
        let promConfig = directory.appending("prometheus.yml")
        try "global:\n  scrape_interval: 1m\nstorage:\n  tsdb:\n    out_of_order_time_window: 1d\n".write(toFile: promConfig, atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(promConfig)", "--storage.tsdb.path=\(directory.appending("prom"))",
                                "--web.listen-address=127.0.0.1:\(promPort)", "--web.enable-remote-write-receiver", "--log.level=warn"]
        let promLog = directory.appending("prometheus.log")
        FileManager.default.createFile(atPath: promLog, contents: nil)
        prometheus.standardOutput = FileHandle(forWritingAtPath: promLog)
        prometheus.standardError = FileHandle(forWritingAtPath: promLog)
        try launch(prometheus)
        defer { prometheus.terminate() }
        let promUp = try await eventually {
            let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(promPort)/-/ready"), timeout: .seconds(2))
            return response?.status == .ok
        }
        #expect(promUp, "\((try? String(contentsOfFile: promLog, encoding: .utf8)) ?? "")")

        let collector = try CollectorProcess(dataDirectory: directory.appending("data"), logDirectory: directory.path,
                                             arguments: ["--remote-write-url", vm.writeURL,
                                                         "--remote-write-url", "http://127.0.0.1:\(promPort)/api/v1/write"])
        defer { collector.send(SIGKILL) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let auth = try await collector.authorization(organization: "org-rw")
        let base = (Int64(Date().timeIntervalSince1970) - 600) * 1_000_000_000
        let write = try await collector.get("/write", headers: auth, method: "POST", body: Self.trafficLines(300, base: base))
        #expect(write.status == 204)
        let drained = try await eventually {
            let toVM = try await Self.metric(collector, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth)
            let toPrometheus = try await Self.metric(
                collector, #"flashback_remote_write_samples_total{destination="http://127.0.0.1:\#(promPort)/api/v1/write",outcome="sent"}"#, auth: auth)
            return toVM == 600 && toPrometheus == 600
        }
        #expect(drained, "\(collector.standardError)")
        #expect(try await Self.metric(collector, #"flashback_remote_write_backlog_bytes{destination="\#(vm.writeURL)"}"#, auth: auth) == 0)

        // VictoriaMetrics holds every sample once, named and labelled as documented.
        let uploads = try await vm.export(#"bucket_traffic_upl_bytes{organization="org-rw"}"#)
        #expect(uploads.count == 3)
        #expect(Set(uploads.map { $0.labels }) == Set((0..<3).map {
            ["__name__": "bucket_traffic_upl_bytes", "organization": "org-rw", "bucket": "b\($0)", "repo": "r1", "host": "h1"]
        }))
        let values = uploads.flatMap { $0.samples }.sorted { $0.0 < $1.0 }
        #expect(values.map(\.1) == (0..<300).map(Double.init))
        #expect(values.map(\.0) == (0..<300).map { base / 1_000_000 + Int64($0) })

        // Prometheus read the same bytes the same way.
        let sum = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(promPort)/api/v1/query?query="
            + VictoriaMetricsServer.encode(#"sum(count_over_time(bucket_traffic_requests{organization="org-rw"}[1h]))"#)), timeout: .seconds(10))
        let body = String(buffer: try await sum.body.collect(upTo: 1 << 20))
        #expect(body.contains(#""300""#), "\(body)")
    }

    @Test func aReceiverOutageAndKillMinus9LoseNothingAndStoreEverythingOnce() async throws {
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        let data = directory.appending("data")
        let arguments = ["--remote-write-url", vm.writeURL]
        var collector = try CollectorProcess(dataDirectory: data, logDirectory: directory.path, arguments: arguments)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let auth = try await collector.authorization(organization: "org-rw")
        let base = (Int64(Date().timeIntervalSince1970) - 600) * 1_000_000_000
        #expect(try await collector.get("/write", headers: auth, method: "POST", body: Self.trafficLines(100, base: base)).status == 204)
        let sentFirst = try await eventually {
            try await Self.metric(collector, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth) == 200
        }
        #expect(sentFirst)

        // The receiver goes away: writes are still acknowledged, and queue up. (A stop, not a kill:
        // VictoriaMetrics keeps the newest samples it accepted in memory for a few seconds, and
        // the losses under test are the collector's, not the receiver's.)
        vm.stop()
        for batch in 1...4 {
            #expect(try await collector.get("/write", headers: auth, method: "POST", body: Self.trafficLines(100, base: base, offset: batch * 100)).status == 204)
        }
        let queued = try await eventually {
            let backlog = try await Self.metric(collector, #"flashback_remote_write_backlog_samples{destination="\#(vm.writeURL)"}"#, auth: auth)
            let retried = try await Self.metric(collector, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="retried"}"#, auth: auth)
            return (backlog ?? 0) >= 800 && (retried ?? 0) > 0
        }
        #expect(queued)
        #expect((try await Self.metric(collector, #"flashback_remote_write_lag_seconds{destination="\#(vm.writeURL)"}"#, auth: auth) ?? 0) >= 0)

        // kill -9 with the queue full; the restart resumes it once the receiver is back.
        collector.send(SIGKILL)
        _ = await collector.waitForExit()
        collector = try CollectorProcess(dataDirectory: data, logDirectory: directory.path, arguments: arguments)
        defer { collector.send(SIGKILL) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        try await vm.start()
        let drained = try await eventually {
            let backlog = try await Self.metric(collector, #"flashback_remote_write_backlog_samples{destination="\#(vm.writeURL)"}"#, auth: auth)
            let sent = try await Self.metric(collector, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth)
            return backlog == 0 && sent == 800
        }
        #expect(drained, "\(collector.standardError)")
        let uploads = try await vm.export(#"bucket_traffic_upl_bytes{organization="org-rw"}"#)
        let values = uploads.flatMap { $0.samples }.map(\.1).sorted()
        // Nothing lost, nothing twice (VictoriaMetrics deduplicates a batch sent again).
        #expect(values.count == 500 && values == (0..<500).map(Double.init), "\(values.count) samples, first \(values.first ?? -1)")
    }

    @Test func twoReplicasForwardingTheSameRetryAreStoredOnce() async throws {
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        let secret = "replicas-share-this-jwt-secret-0123456789"
        let replicas = try (0..<2).map { index in
            try CollectorProcess(dataDirectory: directory.appending("data\(index)"), logDirectory: directory.path,
                                 arguments: ["--remote-write-url", vm.writeURL, "--jwt-secret", secret])
        }
        defer { for replica in replicas { replica.send(SIGKILL) } }
        for replica in replicas { #expect(await replica.waitFor(path: "/-/ready", status: 200)) }
        let token = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: Array(secret.utf8)))
            .mint(for: CallerIdentity(organization: "org-rw", user: "ops", role: .owner), lifetime: 600)
        let auth = [("Authorization", "Bearer \(token)")]
        let base = (Int64(Date().timeIntervalSince1970) - 600) * 1_000_000_000
        // The same request (a client's retry) lands on both replicas.
        for replica in replicas {
            #expect(try await replica.get("/write", headers: auth, method: "POST", body: Self.trafficLines(50, base: base)).status == 204)
        }
        for replica in replicas {
            let sent = try await eventually {
                try await Self.metric(replica, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth) == 100
            }
            #expect(sent)
        }
        let uploads = try await vm.export(#"bucket_traffic_upl_bytes{organization="org-rw"}"#)
        #expect(uploads.flatMap { $0.samples }.map(\.1).sorted() == (0..<50).map(Double.init))
    }
}

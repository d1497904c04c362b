import CollectorStore
import CollectorTesting
import Foundation
import Testing

/// Cluster mode's time series: replicas forward every sample to VictoriaMetrics (remote write)
/// and a replica with `--stats-source` answers every stats endpoint from it with the JSON the
/// embedded store gives for the same samples.
@Suite("cluster mode: stats read back from VictoriaMetrics")
struct ClusterStatsTests {
    let directory = TemporaryDirectory(prefix: "cluster-stats")
    let organization = "org-ts"

    /// A replica on `database` with the shared secrets of ``directory``.
    func replica(_ name: String, _ database: PostgresServer, _ extra: [String], httpPort: Int = freeLoopbackPort()) throws -> CollectorProcess {
        try CollectorProcess.replica(name, in: directory, databaseURL: database.url, arguments: ["--registry-timeout", "30"] + extra,
                                     httpPort: httpPort)
    }

    /// The organization's private key, made through `replica`, in a file for `simulate --key`.
    func organizationKeyFile(from replica: CollectorProcess, auth: [(String, String)]) async throws -> String {
        let key = try await replica.get("/organization/\(organization)/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(key.status == 200, "\(key.body)")
        let keyFile = directory.appending("org.pem")
        try key.body.write(toFile: keyFile, atomically: true, encoding: .utf8)
        return keyFile
    }

    /// `simulate` of 4 nodes with 3 buckets each (30 % OFFLINE), reporting every 1.5 s: at least a
    /// second apart, since a node's report carries whole seconds, and two different values of one
    /// series at one time are one sample in either store (which one is kept may differ;
    /// docs/cluster.md). The targets follow.
    func simulateArguments(keyFile: String, seed: Int, duration: Int) -> [String] {
        Self.simulateArguments(organization: organization, keyFile: keyFile, seed: seed, duration: duration)
    }

    static func simulateArguments(organization: String, keyFile: String, seed: Int, duration: Int) -> [String] {
        ["simulate", "--org", organization, "--key", keyFile, "--nodes", "4", "--buckets-per-node", "3", "--interval", "1500ms",
         "--duration", "\(duration)", "--offline-share", "0.3", "--seed", "\(seed)"]
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    @Test func everyStatsEndpointFromVictoriaMetricsEqualsTheEmbeddedAnswer() async throws {
        let database = try await PostgresServer()
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        // A answers from its own store, which holds every sample (the fleet reports to A); B holds
        // none and answers from VictoriaMetrics.
        let a = try replica("a", database, ["--remote-write-url", vm.writeURL])
        defer { a.send(SIGKILL) }
        // B reads through a proxy that counts its requests.
        let proxy = try await CountingProxy(target: vm.baseURL)
        defer { proxy.stop() }
        // Every answer asked afresh (no answer memo), so each request's TSDB requests are counted.
        let b = try replica("b", database, ["--remote-write-url", vm.writeURL, "--stats-source", proxy.baseURL, "--stats-answer-ttl", "0"])
        defer { b.send(SIGKILL) }
        #expect(await a.waitFor(path: "/-/ready", status: 200))
        #expect(await b.waitFor(path: "/-/ready", status: 200))
        let auth = try await a.authorization(organization: organization)
        let keyFile = try await organizationKeyFile(from: a, auth: auth)
        let simulated = try await runCommand(CollectorProcess.executableURL.path, simulateArguments(keyFile: keyFile, seed: 11, duration: 5) + [
            "--target", a.baseURL,
        ])
        #expect(simulated.status == 0 && simulated.standardOutput.contains("errors 0"), "\(simulated.standardOutput)\(simulated.standardError)")

        // Everything A accepted has reached VictoriaMetrics.
        try await expectDrained(a, to: vm, auth: auth)
        try await vm.flush()

        try await Self.expectSameStats(auth: auth, reference: a, answering: [b])

        // Every request to the TSDB is counted by the stats route it answers: B's counters add up
        // to VictoriaMetrics' own count of query requests (B is the only one asking; its
        // `/metrics` is refreshed about once a second, so it is polled).
        let counter = #"flashback_stats_source_requests_total{route="/bucket/stats"}"#
        let countedBefore = try await RemoteWriteIntegrationTests.metric(b, counter, auth: auth) ?? 0
        #expect(try await b.get("/bucket/stats", headers: auth).status == 200)
        #expect(try await RemoteWriteIntegrationTests.metric(b, counter, auth: auth) ?? 0 > countedBefore)
        var counted = 0.0
        var asked = 0.0
        let agreed = try await eventually {
            counted = try await b.get("/metrics", headers: auth).body.split(separator: "\n")
                .filter { $0.hasPrefix("flashback_stats_source_requests_total{") }
                .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            asked = try await vm.queryRequests()
            return counted == asked
        }
        #expect(agreed && counted > 0, "counted \(counted), VictoriaMetrics answered \(asked)")

        // Once the series lists are known, each stats request costs at most 3 TSDB requests for
        // these 12 pairs (a budget of 3 per 1,000 series), counted by the proxy by the route
        // each request names (series lookups and late-delivery checks, background work, apart).
        for (route, path, method, body) in Self.routedRequests(bucket: try await Self.someBucket(a, auth: auth)) {
            let before = try await proxy.counts()[route] ?? 0
            let answer = try await b.get(path, headers: auth + [("Content-Type", "application/json")], method: method, body: body)
            #expect(answer.status == 200, "\(path): \(answer.body)")
            let asked = (try await proxy.counts()[route] ?? 0) - before
            #expect(asked >= 1 && asked <= 3, "\(method) \(path) made \(asked) requests to the TSDB")
        }

        // The cluster dashboard reads the fleet from the TSDB: every panel's query evaluates
        // there and returns a series.
        let queries = try PrometheusExportTests.dashboardQueries(in: "grafana/dashboards-cluster")
        #expect(queries.count >= 11)
        for query in queries {
            let answer = try await PrometheusExportTests.query(vm.port, query.expression)
            #expect(answer.error == nil, "\(query.panel): \(query.expression): \(answer.error ?? "")")
            #expect(!answer.series.isEmpty, "\(query.panel): \(query.expression) returned no series")
        }
        // The dashboard's status table holds every pair the fleet reported (4 nodes × 3 buckets).
        let status = try #require(queries.first { $0.panel == "Node × bucket status" })
        let pairs = try await PrometheusExportTests.query(vm.port, "count(\(status.expression))")
        #expect(PrometheusExportTests.value(pairs.series) == 12, "\(pairs)")
    }

    /// A bucket the fleet reported.
    static func someBucket(_ replica: CollectorProcess, auth: [(String, String)]) async throws -> String {
        let latest = try await replica.get("/stats/nodes/minute", headers: auth)
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(latest.body.utf8)) as? [String: Any])?["data"] as? [[String: Any]])
        return try #require(rows.compactMap { $0["bucketId"] as? String }.min())
    }

    /// A request to each stats route, with its route.
    static func routedRequests(bucket: String) -> [(route: String, path: String, method: String, body: String?)] {
        let today = Self.iso(Date(timeIntervalSince1970: (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400))
        return [
            ("/stats/nodes/minute", "/stats/nodes/minute", "GET", nil),
            ("/stats/nodes/daily", "/stats/nodes/daily", "GET", nil),
            ("/stats/minute", "/stats/minute", "GET", nil),
            ("/stats/daily", "/stats/daily", "GET", nil),
            ("/bucket/stats", "/bucket/stats", "GET", nil),
            ("/bucket/stats", "/bucket/stats?bucketId=\(bucket)", "GET", nil),
            ("/repo/stats", "/repo/stats", "GET", nil),
            ("/bucket/{bucketId}/status", "/bucket/\(bucket)/status", "GET", nil),
            ("/bucket/{bucketId}/stats", "/bucket/\(bucket)/stats", "POST", #"{"day":"\#(today)"}"#),
        ]
    }

    /// Every stats endpoint answered by each of `replicas` is the JSON `reference` gives.
    static func expectSameStats(auth: [(String, String)], reference: CollectorProcess, answering replicas: [CollectorProcess]) async throws {
        let latest = try await reference.get("/stats/nodes/minute", headers: auth)
        let rows = try #require((try JSONSerialization.jsonObject(with: Data(latest.body.utf8)) as? [String: Any])?["data"] as? [[String: Any]])
        let buckets = Set(rows.compactMap { $0["bucketId"] as? String }).sorted()
        #expect(buckets.count == 12, "\(latest.body)")
        let bucket = try #require(buckets.first)
        let now = Date()
        let hourAgo = Self.iso(now.addingTimeInterval(-3600))
        let soon = Self.iso(now.addingTimeInterval(120))
        let today = Self.iso(Date(timeIntervalSince1970: (now.timeIntervalSince1970 / 86_400).rounded(.down) * 86_400))
        let requests: [(method: String, path: String, body: String?)] = [
            ("GET", "/stats/nodes/minute", nil),
            ("GET", "/stats/nodes/minute?startDate=\(hourAgo)&endDate=\(soon)", nil),
            ("GET", "/stats/nodes/minute?bucketId=\(bucket)&startDate=\(hourAgo)", nil),
            ("GET", "/stats/nodes/daily", nil),
            ("GET", "/stats/minute", nil),
            ("GET", "/stats/minute?startDate=\(hourAgo)&endDate=\(soon)&bucketId=\(bucket)", nil),
            ("GET", "/stats/daily", nil),
            ("GET", "/bucket/stats", nil),
            ("GET", "/bucket/stats?bucketId=\(buckets[1])", nil),
            ("GET", "/repo/stats", nil),
            ("GET", "/bucket/\(bucket)/status", nil),
            ("GET", "/unit/\(bucket)/status", nil),
            ("POST", "/bucket/\(bucket)/stats", #"{"day":"\#(today)"}"#),
        ]
        for request in requests {
            func ask(_ replica: CollectorProcess) async throws -> String {
                let response = try await replica.get(request.path, headers: auth + [("Content-Type", "application/json")], method: request.method, body: request.body)
                #expect(response.status == 200, "\(request.path): \(response.body)")
                return response.body
            }
            // Answers that depend on the clock (uptime so far today) can change between two
            // calls: compare with an answer of the reference that stayed the same around them.
            var compared = false
            for _ in 0..<3 where !compared {
                let before = try await ask(reference)
                var answers: [String] = []
                for replica in replicas { answers.append(try await ask(replica)) }
                let after = try await ask(reference)
                guard before == after else { continue }
                for (replica, answer) in zip(replicas, answers) {
                    #expect(answer == before, "\(request.method) \(request.path) on \(replica.baseURL)\nreference: \(before)\nreplica:   \(answer)")
                }
                #expect(before.count > 40, "\(request.path) has rows: \(before)")
                compared = true
            }
            #expect(compared, "\(request.path) kept changing")
        }
    }

    /// Waits until `replica` has forwarded every sample it accepted to `vm` (and, with
    /// `sending`, forwarded some since it started).
    func expectDrained(_ replica: CollectorProcess, to vm: VictoriaMetricsServer, auth: [(String, String)], sending: Bool = true) async throws {
        let drained = try await eventually {
            let backlog = try await RemoteWriteIntegrationTests.metric(replica, #"flashback_remote_write_backlog_samples{destination="\#(vm.writeURL)"}"#, auth: auth)
            let sent = try await RemoteWriteIntegrationTests.metric(replica, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth)
            return backlog == 0 && (!sending || (sent ?? 0) > 0)
        }
        #expect(drained, "\(replica.baseURL) still has a remote-write backlog")
    }

    /// The fleet spreads its reports over two replicas and retries each failed one on the other;
    /// replica B dies by `kill -9` mid-run and comes back. Both then answer every stats endpoint
    /// from VictoriaMetrics with exactly the JSON of a collector that received every report once
    /// (the simulator's mirror, answering from its embedded store): nothing lost, nothing counted
    /// twice.
    @Test func replicasAnswerLikeOneStoreAfterAKillMidRun() async throws {
        let database = try await PostgresServer()
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        let cluster = ["--remote-write-url", vm.writeURL, "--stats-source", vm.baseURL]
        let a = try replica("a", database, cluster)
        defer { a.send(SIGKILL) }
        var b = try replica("b", database, cluster)
        defer { b.send(SIGKILL) }
        // The reference: the same control plane (same node ids), every sample in its own store.
        let single = try replica("single", database, [])
        defer { single.send(SIGKILL) }
        for replica in [a, b, single] { #expect(await replica.waitFor(path: "/-/ready", status: 200)) }
        let auth = try await a.authorization(organization: organization)
        let keyFile = try await organizationKeyFile(from: a, auth: auth)

        let fleet = try BackgroundCommand(CollectorProcess.executableURL.path, simulateArguments(keyFile: keyFile, seed: 12, duration: 15) + [
            "--report-every", "0.5", "--target", a.baseURL, "--target", b.baseURL, "--mirror", single.baseURL,
        ])
        // B has taken reports, then dies without a chance to flush anything.
        #expect(try await eventually {
            (try await RemoteWriteIntegrationTests.metric(b, #"flashback_remote_write_samples_total{destination="\#(vm.writeURL)",outcome="sent"}"#, auth: auth) ?? 0) > 0
        })
        b.send(SIGKILL)
        #expect(await b.waitForExit() != nil)
        // Reports meant for B went to A meanwhile; then B comes back on its address.
        #expect(try await eventually { Self.retries(in: fleet.standardOutput) > 0 }, "\(fleet.standardOutput)")
        b = try replica("b", database, cluster, httpPort: b.httpPort)
        #expect(await b.waitFor(path: "/-/ready", status: 200))
        let run = try #require(await fleet.finish())
        #expect(run.status == 0 && run.standardOutput.contains("errors 0"), "\(run.standardOutput)\(run.standardError)")
        #expect(Self.retries(in: run.standardOutput) > 0, "\(run.standardOutput)")

        try await expectDrained(a, to: vm, auth: auth)
        try await expectDrained(b, to: vm, auth: auth, sending: false)
        try await vm.flush()
        try await Self.expectSameStats(auth: auth, reference: single, answering: [a, b])
    }

    /// Traffic lines of buckets b0…b2 for each of `days` (days before today; 0 is today, a
    /// minute ago), `value` in every field.
    static func trafficLines(days: [Int], value: Int, now: TimeInterval) -> String {
        let today = Int((now / 86_400).rounded(.down))
        return days.flatMap { back in
            (0..<3).map { bucket in
                let time = back == 0 ? Int(now) - 60 - bucket : (today - back) * 86_400 + 3_600 * (bucket + 1) + back
                return "bucket_traffic,bucket=b\(bucket),repo=r\(bucket % 2),host=h upl_bytes=\(value + bucket)i,dwl_bytes=\(2 * value)i,"
                    + "size_change=\(value - 50)i,requests=\(bucket + 1)i,latency_ms=\(value % 97) \(time)"
            }
        }.joined(separator: "\n")
    }

    /// Past days sealed: B reads them from TSDB once into its cache, and then only the open
    /// days. A sample put into VictoriaMetrics behind the replicas' backs for a sealed day
    /// stays unseen (the cache answers), while samples a replica forwards late for a sealed day
    /// carry the day's mark and B reads that day again: B answers like A's embedded store.
    @Test func sealedDaysComeFromTheCacheUntilALateDeliveryMarksThem() async throws {
        let database = try await PostgresServer()
        let vm = try await VictoriaMetricsServer(directory: directory.path)
        defer { vm.kill() }
        let proxy = try await CountingProxy(target: vm.baseURL)
        defer { proxy.stop() }
        // Days sealed 50 h after their end; A accepts samples 30 days old (its embedded store is
        // the reference), B reads from the TSDB.
        let seal = ["--stats-seal-after", "180000"]
        let a = try replica("a", database, ["--remote-write-url", vm.writeURL, "--max-sample-age", "2592000", "--retention-minute", "3456000"] + seal)
        defer { a.send(SIGKILL) }
        let b = try replica("b", database, ["--stats-source", proxy.baseURL] + seal)
        defer { b.send(SIGKILL) }
        #expect(await a.waitFor(path: "/-/ready", status: 200))
        #expect(await b.waitFor(path: "/-/ready", status: 200))
        let auth = try await a.authorization(organization: organization)
        let now = Date().timeIntervalSince1970
        let write = try await a.get("/write?precision=s", headers: auth, method: "POST", body: Self.trafficLines(days: [12, 6, 5, 3, 1, 0], value: 100, now: now))
        #expect(write.status == 204, "\(write.body)")
        try await expectDrained(a, to: vm, auth: auth)
        try await vm.flush()

        let start = Self.iso(Date(timeIntervalSince1970: ((now / 86_400).rounded(.down) - 13) * 86_400))
        let requests = ["/bucket/stats", "/bucket/stats?bucketId=b1", "/repo/stats", "/stats/daily?startDate=\(start)",
                        "/stats/daily?startDate=\(start)&bucketId=b2"]
        func answers(_ replica: CollectorProcess) async throws -> [String] {
            var out: [String] = []
            for path in requests {
                let answer = try await replica.get(path, headers: auth)
                #expect(answer.status == 200, "\(path): \(answer.body)")
                out.append(answer.body)
            }
            return out
        }
        let reference = try await answers(a)
        #expect(try await answers(b) == reference)
        // The backfill itself was late for the sealed days (its mark is the oldest day): B
        // reads them live for a while, then into its cache, through the last sealed day.
        let lastSealed = Int64(((now - 180_000) / 86_400).rounded(.down)) - 1
        let cached = try await eventually(timeout: .seconds(90), every: .milliseconds(500)) {
            _ = try await b.get("/bucket/stats", headers: auth)
            return try await RemoteWriteIntegrationTests.metric(b, "flashback_stats_cache_sealed_through_day", auth: auth) == Double(lastSealed)
        }
        #expect(cached)
        #expect(try await RemoteWriteIntegrationTests.metric(b, "flashback_stats_cache_invalidations_total", auth: auth) ?? 0 >= 1)
        #expect(try await answers(b) == reference)
        // Sealed days are not asked again: a day range costs at most one request, for the open
        // days (none while the answer memo holds it).
        let before = try await proxy.counts()["/stats/daily"] ?? 0
        #expect(try await b.get("/stats/daily?startDate=\(start)", headers: auth).body == reference[3])
        #expect((try await proxy.counts()["/stats/daily"] ?? 0) - before <= 1)

        // Behind the replicas' backs, a sample for day -6 (sealed): B answers from its cache.
        let today = Int64((now / 86_400).rounded(.down))
        let hidden = "bucket_traffic_upl_bytes{organization=\"\(organization)\",bucket=\"b0\",repo=\"r0\",host=\"h\"} 1000000 \((today - 6) * 86_400_000 + 7_200_123)"
        #expect(try await vm.importPrometheus(hidden) == 204)
        try await vm.flush()
        #expect(try await answers(b) == reference)

        // A forwards a late sample for day -5 (sealed at B): its mark makes B read day -5 and
        // the days after it again, not day -6.
        let late = try await a.get("/write?precision=s", headers: auth, method: "POST", body: Self.trafficLines(days: [5], value: 7, now: now))
        #expect(late.status == 204, "\(late.body)")
        try await expectDrained(a, to: vm, auth: auth)
        try await vm.flush()
        let updated = try await answers(a)
        #expect(updated != reference)
        var seen: [String] = []
        let agreed = try await eventually(timeout: .seconds(60), every: .milliseconds(500)) {
            seen = try await answers(b)
            return seen == updated
        }
        #expect(agreed, "B: \(seen)\nA: \(updated)")
        // A's requests carried the marks of their oldest sealed days (a new series may take a
        // moment to be found by VictoriaMetrics' index).
        var marked: Set<String> = []
        let bothMarked = try await eventually {
            marked = Set(try await vm.export("{__name__=\"flashback:late_samples_day\"}").compactMap { $0.labels["day"] })
            return marked == [String(today - 12), String(today - 5)]
        }
        #expect(bothMarked, "\(marked)")
    }

    /// The `retries N` count of the simulator's last progress line.
    static func retries(in output: String) -> Int {
        guard let line = output.split(separator: "\n").last(where: { $0.contains("retries ") }),
              let range = line.range(of: "retries ") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// `--stats-source` naming an HA pair (two VictoriaMetrics fed the same samples): with the
    /// first stopped, the replica answers every stats endpoint from the second, as before.
    @Test func statsFailOverToTheSecondSourceWhenTheFirstStops() async throws {
        let database = try await PostgresServer()
        let first = try await VictoriaMetricsServer(directory: directory.path)
        defer { first.kill() }
        let second = try await VictoriaMetricsServer(directory: directory.path)
        defer { second.kill() }
        let a = try replica("a", database, ["--remote-write-url", first.writeURL, "--remote-write-url", second.writeURL])
        defer { a.send(SIGKILL) }
        // Every answer asked afresh: the failover is exercised, not the memo.
        let b = try replica("b", database, ["--stats-source", "\(first.baseURL),\(second.baseURL)", "--stats-answer-ttl", "0"])
        defer { b.send(SIGKILL) }
        #expect(await a.waitFor(path: "/-/ready", status: 200))
        #expect(await b.waitFor(path: "/-/ready", status: 200))
        let auth = try await a.authorization(organization: organization)
        let keyFile = try await organizationKeyFile(from: a, auth: auth)
        let simulated = try await runCommand(CollectorProcess.executableURL.path, simulateArguments(keyFile: keyFile, seed: 13, duration: 4) + [
            "--target", a.baseURL,
        ])
        #expect(simulated.status == 0 && simulated.standardOutput.contains("errors 0"), "\(simulated.standardOutput)\(simulated.standardError)")
        try await expectDrained(a, to: first, auth: auth)
        try await expectDrained(a, to: second, auth: auth)
        try await first.flush()
        try await second.flush()
        try await Self.expectSameStats(auth: auth, reference: a, answering: [b])
        // The preferred source goes away: every answer comes from the other, unchanged.
        first.kill()
        try await Self.expectSameStats(auth: auth, reference: a, answering: [b])
    }
}

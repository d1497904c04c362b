import AsyncHTTPClient
import CollectorTesting
import Foundation
import NIOCore
import NIOHTTP1
import Testing

/// The Prometheus export against a real Prometheus (Debian's `prometheus`, scraping every second
/// with the scrape token): the built collector is fed by `flashback-collector simulate`, then
/// Prometheus' HTTP API must show domain and self families with the expected values, every
/// dashboard panel's query must evaluate and return a series, promtool must accept a scrape and
/// the alert rules, and the dashboards must be provisionable as they are.
@Suite("Prometheus: a real server scrapes the collector")
struct PrometheusExportTests {
    let directory = TemporaryDirectory(prefix: "prometheus")

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `promtool …`: exit status and everything it printed.
    static func promtool(_ arguments: [String], stdin file: String? = nil) async throws -> (status: Int32, output: String) {
        let result = try await runCommand("/bin/sh", ["-c", "/usr/bin/promtool \"$@\" < \"$INPUT\" 2>&1", "promtool"] + arguments,
                                          environment: ["INPUT": file ?? "/dev/null", "PATH": "/usr/bin:/bin"])
        return (result.status, result.standardOutput)
    }

    /// An instant query through Prometheus' HTTP API: the result vector (empty on error), and
    /// the error text when the query failed.
    static func query(_ port: Int, _ expression: String) async throws -> (series: [[String: Any]], error: String?) {
        var components = URLComponents(string: "http://127.0.0.1:\(port)/api/v1/query")!
        components.queryItems = [URLQueryItem(name: "query", value: expression)]
        let encoded = components.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B") ?? ""
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/api/v1/query?\(encoded)").get()
        let body = response.body.map { String(buffer: $0) } ?? ""
        guard let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return ([], body) }
        guard json["status"] as? String == "success" else { return ([], "\(json["errorType"] ?? "") \(json["error"] ?? body)") }
        let data = json["data"] as? [String: Any]
        return ((data?["result"] as? [[String: Any]]) ?? [], nil)
    }

    /// The value of a one-series answer.
    static func value(_ series: [[String: Any]]) -> Double? {
        guard series.count == 1, let pair = series[0]["value"] as? [Any], pair.count == 2, let text = pair[1] as? String else { return nil }
        return Double(text)
    }

    /// Every panel query of every dashboard in `folder`, with the template variables substituted
    /// as Grafana would for "All", a 1-minute rate interval and a 1-hour time range.
    static func dashboardQueries(in folder: String = "grafana/dashboards") throws -> [(dashboard: String, panel: String, expression: String)] {
        let folder = repository.appendingPathComponent(folder)
        var out: [(String, String, String)] = []
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() where file.hasSuffix(".json") {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent(file))) as? [String: Any])
            for panel in json["panels"] as? [[String: Any]] ?? [] {
                for target in panel["targets"] as? [[String: Any]] ?? [] {
                    guard let expression = target["expr"] as? String else { continue }
                    let substituted = expression.replacingOccurrences(of: "$organization", with: ".*")
                        .replacingOccurrences(of: "$__rate_interval", with: "1m")
                        .replacingOccurrences(of: "$__range", with: "1h")
                    out.append((file, panel["title"] as? String ?? "?", substituted))
                }
            }
        }
        return out
    }

    @Test func dashboardsAreProvisionableAsTheyAre() async throws {
        func files(_ folder: String) throws -> [URL] {
            let url = Self.repository.appendingPathComponent(folder)
            return try FileManager.default.contentsOfDirectory(atPath: url.path).filter { $0.hasSuffix(".json") }.sorted()
                .map { url.appendingPathComponent($0) }
        }
        let single = try files("grafana/dashboards"), cluster = try files("grafana/dashboards-cluster")
        #expect(single.map(\.lastPathComponent) == ["collector.json", "fleet.json", "traffic.json"])
        #expect(cluster.map(\.lastPathComponent) == ["fleet-tsdb.json"])
        var uids: Set<String> = []
        for url in single + cluster {
            let file = url.lastPathComponent
            let text = try String(contentsOf: url, encoding: .utf8)
            #expect(!text.contains("__inputs") && !text.contains("${DS_"), "\(file)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            #expect(json["id"] is NSNull, "\(file): id must be null")
            let uid = try #require(json["uid"] as? String)
            #expect(!uid.isEmpty && uids.insert(uid).inserted, "\(file): uid")
            let variables = (json["templating"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
            #expect(variables.contains { $0["type"] as? String == "datasource" && $0["query"] as? String == "prometheus" }, "\(file)")
            for panel in json["panels"] as? [[String: Any]] ?? [] {
                let datasource = panel["datasource"] as? [String: Any]
                #expect(datasource?["uid"] as? String == "${datasource}", "\(file): \(panel["title"] ?? "")")
            }
        }
        #expect(FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent("grafana/provisioning/datasources/prometheus.yaml").path))
        for provider in ["flashback.yaml", "flashback-cluster.yaml"] {
            #expect(FileManager.default.fileExists(atPath: Self.repository.appendingPathComponent("grafana/provisioning/dashboards/\(provider)").path))
        }
        let rules = try await Self.promtool(["check", "rules", Self.repository.appendingPathComponent("grafana/alerts.yaml").path])
        #expect(rules.status == 0, "\(rules.output)")
        #expect(rules.output.contains("SUCCESS: 8 rules found"), "\(rules.output)")
    }

    @Test func aRealPrometheusScrapesTheSimulatedFleet() async throws {
        let token = "scrape-\(UUID().uuidString)"
        let collector = try CollectorProcess(dataDirectory: directory.appending("data"), logDirectory: directory.path,
                                             arguments: ["--metrics-token", token, "--flush-interval-ms", "200"])
        defer { collector.send(SIGTERM) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        #expect(try await collector.get("/metrics").status == 401)
        #expect(try await collector.get("/metrics", headers: [("Authorization", "Bearer wrong")]).status == 401)

        // Three nodes with two buckets each report for three seconds.
        let auth = try await collector.authorization(organization: "org-prom")
        let key = try await collector.get("/organization/org-prom/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        let keyFile = directory.appending("org.pem")
        try key.body.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let simulated = try await runCommand(CollectorProcess.executableURL.path, [
            "simulate", "--org", "org-prom", "--key", keyFile, "--nodes", "3", "--buckets-per-node", "2", "--interval", "1s",
            "--duration", "3", "--offline-share", "0", "--seed", "11", "--target", collector.baseURL])
        #expect(simulated.status == 0, "\(simulated.standardError)")

        // promtool on a scrape taken after the simulator ran.
        let scrape = try await collector.get("/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(scrape.status == 200)
        let scrapeFile = directory.appending("scrape.txt")
        try scrape.body.write(toFile: scrapeFile, atomically: true, encoding: .utf8)
        let lint = try await Self.promtool(["check", "metrics"], stdin: scrapeFile)
        #expect(lint.status == 0 && lint.output.isEmpty, "\(lint.output)")
        #expect(scrape.body.contains("flashback_node_bucket_up{"))

        // A real Prometheus, scraping every second with the token, with the alert rules.
        let port = freeLoopbackPort()
        let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files:
              - \(Self.repository.appendingPathComponent("grafana/alerts.yaml").path)
            scrape_configs:
              - job_name: flashback-collector
                static_configs:
                  - targets: ["127.0.0.1:\(collector.httpPort)"]
                authorization:
                  credentials: "\(token)"
            """
        let configFile = directory.appending("prometheus.yml")
        try config.write(toFile: configFile, atomically: true, encoding: .utf8)
        let prometheus = Process()
        prometheus.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        prometheus.arguments = ["--config.file=\(configFile)", "--storage.tsdb.path=\(directory.appending("tsdb"))",
                                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
        let log = directory.appending("prometheus.log")
        FileManager.default.createFile(atPath: log, contents: nil)
        prometheus.standardOutput = FileHandle(forWritingAtPath: log)
        prometheus.standardError = FileHandle(forWritingAtPath: log)
        try launch(prometheus)
        defer { prometheus.terminate() }

        // Wait until Prometheus has scraped a few times (rates need two samples).
        let scraped = try await eventually {
            let answer = try? await Self.query(port, "count_over_time(flashback_collector_build_info[1m])")
            return (answer.flatMap { Self.value($0.series) } ?? 0) >= 3
        }
        #expect(scraped, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")

        // Domain families: 3 nodes of the organization, 6 node×bucket pairs, all ONLINE.
        #expect(Self.value(try await Self.query(port, #"sum(flashback_nodes{organization="org-prom"})"#).series) == 3)
        #expect(Self.value(try await Self.query(port, #"count(flashback_node_bucket_up{organization="org-prom"})"#).series) == 6)
        #expect(Self.value(try await Self.query(port, #"sum(flashback_node_bucket_status{organization="org-prom"})"#).series) == 6)
        #expect((Self.value(try await Self.query(port, #"sum(flashback_bucket_upload_bytes_total{organization="org-prom"})"#).series) ?? 0) > 0)
        // Self families: the status reports were stored (3 nodes × 2 buckets × at least 2 rounds).
        #expect((Self.value(try await Self.query(port, #"sum(flashback_ingest_samples_stored_total{protocol="status"})"#).series) ?? 0) >= 24)
        #expect(Self.value(try await Self.query(port, #"flashback_collector_build_info{job="flashback-collector"}"#).series) == 1)
        #expect(Self.value(try await Self.query(port, #"up{job="flashback-collector"}"#).series) == 1)

        // Every dashboard panel's query evaluates and returns at least one series.
        let queries = try Self.dashboardQueries()
        #expect(queries.count >= 25)
        for query in queries {
            let answer = try await Self.query(port, query.expression)
            #expect(answer.error == nil, "\(query.dashboard) / \(query.panel): \(query.expression): \(answer.error ?? "")")
            #expect(!answer.series.isEmpty, "\(query.dashboard) / \(query.panel): \(query.expression) returned no series")
        }
        // The alert rules are loaded and evaluate without error.
        let rulesHealthy = try await eventually(timeout: .seconds(20)) {
            let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/api/v1/rules").get()
            let body = response.body.map { String(buffer: $0) } ?? ""
            return body.contains("\"name\":\"NodeDown\"") && body.contains("\"name\":\"CollectorUncleanShutdown\"")
                && !body.contains("\"health\":\"err\"") && !body.contains("\"health\":\"unknown\"")
        }
        #expect(rulesHealthy)
    }
}

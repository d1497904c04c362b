import CollectorTesting
import Foundation
import Testing

/// `flashback-collector simulate` against the real binary: nodes registered with real signatures,
/// status and traffic stored, over HTTP and over signed UDP.
@Suite("simulate: a fleet against the real binary")
struct SimulateCommandTests {
    let directory = TemporaryDirectory(prefix: "simulate")
    var dataDirectory: String { directory.appending("data") }

    func count(_ collector: CollectorProcess, _ auth: [(String, String)], measurement: String, field: String) async throws -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        let response = try await collector.get("/api/v1/rollups?measurement=\(measurement)&field=\(field)&start=\(now - 600)&end=\(now + 600)&aggregate=count", headers: auth)
        let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return json?["count"] as? Int ?? -1
    }

    @Test func nodesRegisterAndReportOverHTTPAndUDP() async throws {
        let collector = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let auth = try await collector.authorization(organization: "org-sim")
        let key = try await collector.get("/organization/org-sim/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(key.status == 200)
        let keyFile = directory.appending("org.pem")
        try key.body.write(toFile: keyFile, atomically: true, encoding: .utf8)

        let common = ["simulate", "--org", "org-sim", "--key", keyFile, "--nodes", "3", "--buckets-per-node", "2",
                      "--interval", "1s", "--duration", "2.5", "--report-every", "1", "--seed", "7", "--target", collector.baseURL]
        let overHTTP = try runCommand(CollectorProcess.executableURL.path, common)
        #expect(overHTTP.status == 0, "\(overHTTP.standardError)")
        #expect(overHTTP.standardOutput.contains("registered 3 nodes"))
        #expect(overHTTP.standardOutput.contains("errors 0"), "\(overHTTP.standardOutput)")
        #expect(!overHTTP.standardOutput.contains("last error"), "\(overHTTP.standardOutput)")
        let statusOverHTTP = try await count(collector, auth, measurement: "node_status", field: "status")
        let trafficOverHTTP = try await count(collector, auth, measurement: "bucket_traffic", field: "upl_bytes")
        // 3 nodes x 2 buckets, at least two reports each.
        #expect(statusOverHTTP >= 12, "\(overHTTP.standardOutput)")
        #expect(trafficOverHTTP >= 12)

        let overUDP = try runCommand(CollectorProcess.executableURL.path, common + ["--udp", "127.0.0.1:\(collector.udpPort)", "--ip-prefix", "10.78"])
        #expect(overUDP.status == 0, "\(overUDP.standardError)")
        #expect(overUDP.standardOutput.contains("over UDP"))
        // Datagrams have no answer: wait (bounded) until the collector stored them.
        let deadline = ContinuousClock.now + .seconds(20)
        var statusAfterUDP = statusOverHTTP
        while statusAfterUDP < statusOverHTTP + 12, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            statusAfterUDP = try await count(collector, auth, measurement: "node_status", field: "status")
        }
        #expect(statusAfterUDP >= statusOverHTTP + 12)
        #expect(try await count(collector, auth, measurement: "bucket_traffic", field: "requests") >= 24)

        let nodes = try await collector.get("/organization/org-sim/nodes", headers: auth)
        #expect(nodes.body.contains(#""total":6"#), "\(nodes.body)")
        #expect(nodes.body.contains(#""provider":"SIMULATOR""#))
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }
}

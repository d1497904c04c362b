import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Ingestion
import Logging
import MetricsTestKit
import Registry
import Testing
import TimeSeries

/// The UDP path without sockets: `#fb1` header checks, then the same write path as HTTP.
@Suite("UDP line protocol")
struct UDPIngestTests {
    let directory = TemporaryDirectory(prefix: "udp")
    static let now = Date(timeIntervalSince1970: 1_760_000_000)

    func datagram(node: String, token: String, seconds: Int64 = Int64(UDPIngestTests.now.timeIntervalSince1970), body: String, tamper: Bool = false) -> [UInt8] {
        let rest = Array(body.utf8)
        let mac = Data(HMAC<SHA256>.authenticationCode(for: rest, using: SymmetricKey(data: Array(token.utf8)))).base64EncodedString()
        return Array("#fb1 \(node) \(seconds) \(mac)\n".utf8) + (tamper ? Array((body + "0").utf8) : rest)
    }

    @Test func headersAreVerifiedAndEveryRefusalIsCounted() async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let clock: @Sendable () -> Date = { UDPIngestTests.now }
        let registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256))), clock: clock, logger: Logger(label: "test"))
        let store = try TimeSeriesStore(database: storage.database)
        let (_, pem) = try await registry.createKey(organization: "org-u")
        let signer = try OpenSSLSigner(privateKeyPEM: pem, directory: directory.path)
        let stamp = String(Int64(Self.now.timeIntervalSince1970))
        let message = SignedNodeMessage(ip: "192.0.2.1", region: "eu", timestamp: try #require(NodeTimestamp(string: stamp)),
                                        signature: try await signer.signNodeMessage(ip: "192.0.2.1", region: "eu", timestamp: stamp), organization: "org-u")
        let (node, token) = try await registry.register(NodeRegistration(message: message, provider: nil, version: "1", status: "running", nodeServices: nil, url: nil))

        let metrics = TestMetrics()
        let sink = LineProtocolDatagramSink(
            writer: IngestWriter(store: store, nodes: registry, metrics: IngestMetrics(factory: metrics), now: clock), mode: .hmac,
            logger: Logger(label: "test"))
        let seconds = Int64(Self.now.timeIntervalSince1970)
        func send(_ bytes: [UInt8]) { bytes.withUnsafeBytes { sink.handle($0) } }

        send(datagram(node: node.id, token: token, body: "node_status,bucket=b1 status=1i,latency_ms=12 \(seconds)000000000\nnode_status,bucket=b2 status=0i \(seconds)000000000"))
        send(datagram(node: node.id, token: token, body: "node_status,bucket=b9 status=1i \(seconds)000000000", tamper: true))
        send(datagram(node: "no-such-node", token: token, body: "node_status,bucket=b9 status=1i"))
        send(datagram(node: node.id, token: token, seconds: seconds - 301, body: "node_status,bucket=b9 status=1i"))
        send(datagram(node: node.id, token: "fbn1.wrong.token", body: "node_status,bucket=b9 status=1i"))
        send(Array("node_status,bucket=b9 status=1i".utf8))
        send(Array("#fb1 garbage\nx v=1".utf8))
        send(datagram(node: node.id, token: token, body: "node_status,node=someone-else,bucket=b9 status=1i"))

        let counts = sink.counts
        #expect(counts[.accepted] == 1)
        #expect(counts[.badSignature] == 2)
        #expect(counts[.unknownNode] == 1)
        #expect(counts[.staleTimestamp] == 1)
        #expect(counts[.missingHeader] == 1)
        #expect(counts[.badHeader] == 1)
        #expect(counts[.badLines] == 1)
        // The same counts as metrics, and the samples of the accepted datagram.
        for (outcome, expected) in [("accepted", 1), ("bad_signature", 2), ("unknown_node", 1), ("stale_timestamp", 1), ("missing_header", 1), ("bad_header", 1), ("bad_lines", 1)] {
            #expect(try metrics.expectCounter("flashback_udp_datagrams_total", [("outcome", outcome)]).totalValue == Int64(expected), "\(outcome)")
        }
        #expect(try metrics.expectCounter("flashback_ingest_samples_stored_total", [("protocol", "udp")]).totalValue == 3)
        #expect(try metrics.expectCounter("flashback_ingest_lines_rejected_total", [("protocol", "udp"), ("reason", "invalid_tag")]).totalValue == 1)
        // Only the accepted datagram's two series exist, tagged with the node and its organization.
        let series = store.index.series(organization: "org-u", measurement: "node_status")
        #expect(series.count == 2)
        #expect(series.allSatisfy { $0.key.tags.contains { $0.key == "node" && $0.value == node.id } })
        #expect(series.allSatisfy { !$0.key.tags.contains { $0.value == "b9" } })

        // Trusted mode: a datagram without header is stored as public data.
        let open = LineProtocolDatagramSink(writer: IngestWriter(store: store, nodes: registry, now: clock), mode: .none,
                                            logger: Logger(label: "test"))
        Array("lab,probe=p1 v=1 \(seconds)000000000".utf8).withUnsafeBytes { open.handle($0) }
        #expect(open.counts[.accepted] == 1)
        #expect(store.index.series(organization: "", measurement: "lab").count == 1)
        // … or for the organization named by --udp-organization; a signed datagram still goes
        // to its node's organization.
        let assigned = LineProtocolDatagramSink(writer: IngestWriter(store: store, nodes: registry, now: clock), mode: .none,
                                                logger: Logger(label: "test"), unsignedOrganization: "org-lab")
        Array("lab,probe=p2 v=2 \(seconds)000000000".utf8).withUnsafeBytes { assigned.handle($0) }
        send(datagram(node: node.id, token: token, body: "lab,probe=p3 v=3 \(seconds)000000000"))
        datagram(node: node.id, token: token, body: "lab,probe=p4 v=4 \(seconds)000000000").withUnsafeBytes { assigned.handle($0) }
        #expect(store.index.series(organization: "org-lab", measurement: "lab").map { $0.key.tags.first { $0.key == "probe" }?.value } == ["p2"])
        #expect(store.index.series(organization: "org-u", measurement: "lab").count == 2)
        #expect(store.index.series(organization: "", measurement: "lab").count == 1)
    }
}

import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Ingestion
import Logging
import NIOCore
import Registry
import ServiceLifecycle
import Synchronization
import Testing
import TimeSeries

/// The UDP listener on a real socket feeding the real sink and store: what arrives over the wire
/// (vectored reads, read bursts, HMAC headers) is what gets stored. The test waits for the
/// listener to hand over bursts (a stream of "processed" events), never for a guessed delay.
@Suite("UDP listener over a real socket")
struct UDPListenerTests {
    let directory = TemporaryDirectory(prefix: "udp-socket")

    /// Passes every burst to the real sink, then reports how many datagrams it has handled.
    final class ObservedSink: DatagramSink {
        let sink: LineProtocolDatagramSink
        let handled = Atomic<Int>(0)
        let events: AsyncStream<Int>
        private let continuation: AsyncStream<Int>.Continuation

        init(_ sink: LineProtocolDatagramSink) {
            self.sink = sink
            (events, continuation) = AsyncStream.makeStream()
        }

        func receive(_ datagrams: [ByteBuffer]) async {
            await sink.receive(datagrams)
            continuation.yield(handled.add(datagrams.count, ordering: .relaxed).newValue)
        }
    }

    /// Runs a listener on a free port around `body`, which gets the port and the sink.
    func withListener(mode: UDPAuthMode, unsignedOrganization: String = "",
                      _ body: @Sendable (Int, ObservedSink, TimeSeriesStore, NodeRegistry) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256))), logger: Logger(label: "test"))
        let store = try TimeSeriesStore(database: storage.database)
        let sink = ObservedSink(LineProtocolDatagramSink(writer: IngestWriter(store: store, nodes: registry), mode: mode,
                                                         logger: Logger(label: "test"), unsignedOrganization: unsignedOrganization))
        let port = freeLoopbackPort(udp: true)
        let readiness = ServiceReadiness()
        let listener = UDPListener(address: try #require(ListenAddress(parsing: "127.0.0.1:\(port)")), sink: sink, onListening: { readiness.markUp(.udp) }, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [listener], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            await readiness.waitUntilUp(.udp)
            try await body(port, sink, store, registry)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// Waits until the sink has handled `count` datagrams.
    static func waitForDatagrams(_ count: Int, _ sink: ObservedSink) async {
        guard sink.handled.load(ordering: .relaxed) < count else { return }
        for await handled in sink.events where handled >= count { return }
    }

    static func count(_ store: TimeSeriesStore, organization: String, measurement: String) throws -> UInt64 {
        guard let field = store.index.existingFieldID("v") else { return 0 }
        let now = Int64(Date().timeIntervalSince1970)
        return try store.index.series(organization: organization, measurement: measurement).reduce(0) { total, series in
            total + (try store.rollups(series: series.id, field: field, start: now - 7200, end: now + 7200, perDay: false).reduce(0) { $0 + $1.rollup.count })
        }
    }

    /// Datagrams near the UDP maximum arrive whole: every line is stored. Sent back to back, so
    /// the listener reads several with one vectored call (a buffer slot smaller than a datagram
    /// would truncate it and lose its last lines).
    @Test(.timeLimit(.minutes(3))) func largeDatagramsAreNotTruncated() async throws {
        try await withListener(mode: .none, unsignedOrganization: "org-d") { port, sink, store, _ in
            let seconds = Int64(Date().timeIntervalSince1970)
            var expected = 0
            for datagram in 0..<4 {
                let lines = (0..<600).map { "probe_large,datagram=\(datagram),site=site-\(String(repeating: "x", count: 30))-\($0) v=\($0) \(seconds)000000000" }
                let bytes = Array(lines.joined(separator: "\n").utf8)
                #expect(bytes.count > 50_000 && bytes.count < 65_000)
                sendUDP(bytes, port: port)
                expected += lines.count
            }
            await Self.waitForDatagrams(4, sink)
            let stored = try Self.count(store, organization: "org-d", measurement: "probe_large")
            #expect(stored == UInt64(expected))
            #expect(sink.sink.counts[.accepted] == 4)
        }
    }

    /// `--udp-auth hmac`: a datagram signed with the node's token is stored for its organization;
    /// unsigned and tampered ones store nothing and are counted.
    @Test(.timeLimit(.minutes(3))) func signedDatagramsAreStoredAndOthersCounted() async throws {
        try await withListener(mode: .hmac) { port, sink, store, registry in
            let (_, pem) = try await registry.createKey(organization: "org-d")
            let signer = try OpenSSLSigner(privateKeyPEM: pem, directory: directory.path)
            let stamp = String(Int64(Date().timeIntervalSince1970))
            let message = SignedNodeMessage(ip: "192.0.2.7", region: "eu", timestamp: try #require(NodeTimestamp(string: stamp)),
                                            signature: try await signer.signNodeMessage(ip: "192.0.2.7", region: "eu", timestamp: stamp), organization: "org-d")
            let (node, token) = try await registry.register(NodeRegistration(message: message, provider: nil, version: "1", status: "running", nodeServices: nil, url: nil))

            let seconds = Int64(Date().timeIntervalSince1970)
            let body = Array("probe,site=a v=1 \(seconds)000000000\nprobe,site=b v=2 \(seconds)000000000\n".utf8)
            let mac = Data(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(token.utf8)))).base64EncodedString()
            sendUDP(Array("#fb1 \(node.id) \(seconds) \(mac)\n".utf8) + body, port: port)
            sendUDP(Array("probe,site=c v=3 \(seconds)000000000\n".utf8), port: port)
            sendUDP(Array("#fb1 \(node.id) \(seconds) \(mac)\n".utf8) + body + Array("probe,site=d v=4\n".utf8), port: port)
            await Self.waitForDatagrams(3, sink)
            let stored = try Self.count(store, organization: "org-d", measurement: "probe")
            #expect(stored == 2)
            #expect(sink.sink.counts[.accepted] == 1)
            #expect(sink.sink.counts[.missingHeader] == 1)
            #expect(sink.sink.counts[.badSignature] == 1)
        }
    }
}

import ArgumentParser
import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Synchronization
import _CryptoExtras

/// `flashback-collector simulate`: a fleet of bridge nodes for demos, dashboards and load tests.
///
/// Registers `--nodes` nodes of an organization with real RSA signatures (the organization's
/// private key, as the node installer does), then every `--interval` each node reports its
/// buckets' status (signed `POST /node/status`) and traffic (`POST /stats/report` with its node
/// token) — or, with `--udp`, both as line protocol datagrams with the `#fb1` HMAC header. A
/// share of buckets is OFFLINE at any time (`--offline-share`) and latencies follow a lognormal
/// spread around `--latency-ms`. Progress (samples sent, rate, errors) is printed every few
/// seconds until the command is stopped or `--duration` has passed.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate bridge nodes that register and push status and traffic to a collector."
    )

    @Option(name: .long, help: "Organization id the nodes belong to.")
    var org: String

    @Option(name: .long, help: "The organization's private key (PEM, PKCS#1 or PKCS#8), as returned by POST /organization/{id}/key.")
    var key: String

    @Option(name: .long, help: "Number of nodes (default: 10).")
    var nodes: Int = 10

    @Option(name: .long, help: "Buckets per node (default: 5).")
    var bucketsPerNode: Int = 5

    @Option(name: .long, help: "Time between two reports of a node, such as 500ms, 1s, 1m (default: 1s).")
    var interval: String = "1s"

    @Option(name: .long, help: "Collector base URL (default: http://127.0.0.1:8080).")
    var target: String = "http://127.0.0.1:8080"

    @Option(name: .long, help: "Send status and traffic as UDP line protocol to host:port instead of HTTP (registration stays HTTP).")
    var udp: String?

    @Option(name: .long, help: "Share of buckets OFFLINE at any time, 0 to 1 (default: 0.05).")
    var offlineShare: Double = 0.05

    @Option(name: .long, help: "Median bucket latency in milliseconds (default: 80).")
    var latencyMs: Double = 80

    @Option(name: .long, help: "Spread of latencies: sigma of the lognormal distribution (default: 0.5).")
    var latencySpread: Double = 0.5

    @Option(name: .long, help: "Region of the nodes (default: eu-central-1).")
    var region: String = "eu-central-1"

    @Option(name: .long, help: "First two octets of the nodes' IPv4 addresses (default: 10.77).")
    var ipPrefix: String = "10.77"

    @Option(name: .long, help: "Stop after this many seconds (default: 0 = run until stopped).")
    var duration: Double = 0

    @Option(name: .long, help: "Seconds between progress lines (default: 5).")
    var reportEvery: Double = 5

    @Option(name: .long, help: "Seed of the random generator, for reproducible runs (default: random).")
    var seed: UInt64?

    func validate() throws {
        guard nodes > 0, nodes <= 65_000 else { throw ValidationError("nodes must be between 1 and 65000") }
        guard bucketsPerNode > 0, bucketsPerNode <= 10_000 else { throw ValidationError("buckets-per-node must be between 1 and 10000") }
        guard (0...1).contains(offlineShare) else { throw ValidationError("offline-share must be between 0 and 1") }
        guard latencyMs > 0, latencySpread >= 0 else { throw ValidationError("latency-ms must be positive and latency-spread not negative") }
        guard Self.parseInterval(interval) != nil else { throw ValidationError("interval must look like 250ms, 1s or 1m, not \(interval)") }
        guard duration >= 0, reportEvery > 0 else { throw ValidationError("duration must not be negative and report-every must be positive") }
        if let udp { guard UDPTarget(parsing: udp) != nil else { throw ValidationError("udp must be an IPv4 host:port, not \(udp)") } }
    }

    /// `250ms`, `1s`, `2m`, or plain seconds.
    static func parseInterval(_ text: String) -> Duration? {
        let (number, scale): (Substring, Double)
        if text.hasSuffix("ms") { (number, scale) = (text.dropLast(2), 0.001) }
        else if text.hasSuffix("s") { (number, scale) = (text.dropLast(), 1) }
        else if text.hasSuffix("m") { (number, scale) = (text.dropLast(), 60) }
        else { (number, scale) = (Substring(text), 1) }
        guard let value = Double(number), value > 0, value * scale >= 0.01, value * scale <= 86_400 else { return nil }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    func run() async throws {
        guard let pem = FileManager.default.contents(atPath: key).map({ String(decoding: $0, as: UTF8.self) }) else {
            throw ValidationError("cannot read the key file \(key)")
        }
        let privateKey: _RSA.Signing.PrivateKey
        do {
            privateKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw ValidationError("\(key) is not an RSA private key in PEM form")
        }
        let tick = Self.parseInterval(interval) ?? .seconds(1)
        let base = target.hasSuffix("/") ? String(target.dropLast()) : target
        let fleet = Fleet(nodes: nodes, bucketsPerNode: bucketsPerNode, offlineShare: offlineShare, latencyMs: latencyMs,
                          spread: latencySpread, seed: seed ?? UInt64.random(in: 0...UInt64.max))
        let client = HTTPClient.shared
        let udpSocket = try udp.flatMap(UDPTarget.init(parsing:)).map { try UDPSocket(target: $0) }

        // Registration, with real signatures.
        var registered: [SimulatedNode] = []
        for index in 0..<nodes {
            let ip = "\(ipPrefix).\(index / 250).\(index % 250 + 1)"
            let timestamp = String(Int64(Date().timeIntervalSince1970))
            let body: [String: Any] = [
                "ip": ip, "region": region, "timestamp": Int64(timestamp) ?? 0, "id_org": org,
                "signature": try sign("\(ip)|\(region)|\(timestamp)", with: privateKey),
                "provider": "SIMULATOR", "status": "running", "version": "simulator-\(FlashbackCollector.version)",
            ]
            let response = try await post(client, "\(base)/register", json: body, headers: [:])
            guard response.status == 200, let nodeID = response.json["nodeId"] as? String, let token = response.json["nodeToken"] as? String else {
                throw ValidationError("registering node \(ip) failed: HTTP \(response.status): \(response.text)")
            }
            registered.append(SimulatedNode(index: index, ip: ip, id: nodeID, token: token))
        }
        print("registered \(registered.count) nodes of organization \(org) at \(base); reporting every \(interval)\(udp.map { " over UDP to \($0)" } ?? " over HTTP")")

        let progress = Progress()
        let started = ContinuousClock.now
        let stopAt = duration > 0 ? started + .milliseconds(Int64(duration * 1000)) : nil
        var nextReport = started + .milliseconds(Int64(reportEvery * 1000))
        var nextTick = started
        while stopAt.map({ ContinuousClock.now < $0 }) ?? true {
            let now = Date()
            let states = fleet.advance()
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for node in registered {
                    if running >= 16 { await group.next(); running -= 1 }
                    running += 1
                    let buckets = states[node.index]
                    group.addTask {
                        do {
                            if let udpSocket {
                                let sent = try udpSocket.send(datagram(node: node, buckets: buckets, now: now))
                                progress.sent(samples: sent)
                            } else {
                                try await reportOverHTTP(client, base: base, node: node, buckets: buckets, now: now, key: privateKey, progress: progress)
                            }
                        } catch {
                            progress.failed("\(node.ip): \(error)")
                        }
                    }
                }
                await group.waitForAll()
            }
            if ContinuousClock.now >= nextReport {
                print(progress.line(elapsed: ContinuousClock.now - started))
                nextReport += .milliseconds(Int64(reportEvery * 1000))
            }
            nextTick += tick
            let wait = nextTick - ContinuousClock.now
            if wait > .zero {
                try await Task.sleep(for: stopAt.map { min(wait, max(.zero, $0 - ContinuousClock.now)) } ?? wait)
            } else {
                nextTick = ContinuousClock.now  // behind schedule: do not burst to catch up
            }
        }
        print(progress.line(elapsed: ContinuousClock.now - started, final: true))
    }

    // MARK: Reports

    private func reportOverHTTP(_ client: HTTPClient, base: String, node: SimulatedNode, buckets: [BucketState], now: Date,
                                key: _RSA.Signing.PrivateKey, progress: Progress) async throws {
        // Milliseconds in the signed timestamp: every report is a new message (no replay).
        let timestamp = now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let status: [String: Any] = [
            "ip": node.ip, "region": region, "timestamp": timestamp, "id_org": org,
            "signature": try sign("\(node.ip)|\(region)|\(timestamp)", with: key),
            "buckets": buckets.map { bucket -> [String: Any] in
                var entry: [String: Any] = ["unitId": bucket.id, "status": bucket.online ? "ONLINE" : "OFFLINE"]
                if bucket.online { entry["latencyMs"] = bucket.latencyMs }
                return entry
            },
        ]
        let statusResponse = try await post(client, "\(base)/node/status", json: status, headers: [:])
        try progress.record(statusResponse)
        let seconds = Int64(now.timeIntervalSince1970)
        let traffic: [[String: Any]] = buckets.map { bucket in
            ["timestamp": seconds, "bucketId": bucket.id, "repoId": "sim-repo-\(node.index % 4)", "upl_bytes": bucket.uploaded,
             "dwl_bytes": bucket.downloaded, "size_change": bucket.sizeChange, "requests": bucket.requests,
             "latency_ms": bucket.online ? bucket.latencyMs : 0]
        }
        let trafficResponse = try await post(client, "\(base)/stats/report", json: traffic, headers: ["Authorization": "Bearer \(node.token)"])
        try progress.record(trafficResponse)
    }

    /// One datagram per node and tick: `#fb1` header, then a status and a traffic line per bucket.
    /// Returns the bytes and the number of field samples in them.
    private func datagram(node: SimulatedNode, buckets: [BucketState], now: Date) -> ([UInt8], Int) {
        let nanos = Int64(now.timeIntervalSince1970 * 1e9)
        var body = ""
        var samples = 0
        for bucket in buckets {
            if bucket.online {
                body += "node_status,bucket=\(bucket.id) status=1i,latency_ms=\(bucket.latencyMs) \(nanos)\n"
                samples += 2
            } else {
                body += "node_status,bucket=\(bucket.id) status=0i \(nanos)\n"
                samples += 1
            }
            body += "bucket_traffic,bucket=\(bucket.id),repo=sim-repo-\(node.index % 4) upl_bytes=\(bucket.uploaded)i,dwl_bytes=\(bucket.downloaded)i,requests=\(bucket.requests)i,size_change=\(bucket.sizeChange)i \(nanos)\n"
            samples += 4
        }
        let rest = Array(body.utf8)
        let mac = Data(HMAC<SHA256>.authenticationCode(for: rest, using: SymmetricKey(data: Array(node.token.utf8)))).base64EncodedString()
        return (Array("#fb1 \(node.id) \(Int64(now.timeIntervalSince1970)) \(mac)\n".utf8) + rest, samples)
    }

    private func sign(_ message: String, with key: _RSA.Signing.PrivateKey) throws -> String {
        try key.signature(for: Data(message.utf8), padding: .insecurePKCS1v1_5).rawRepresentation.base64EncodedString()
    }

    struct Response {
        var status: Int
        var text: String
        var json: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
        }
    }

    private func post(_ client: HTTPClient, _ url: String, json: Any, headers: [String: String]) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Response(status: Int(response.status.code), text: String(buffer: body))
    }
}

struct SimulatedNode: Sendable {
    var index: Int
    var ip: String
    var id: String
    var token: String
}

/// One bucket's state in one tick.
struct BucketState: Sendable {
    var id: String
    var online: Bool
    var latencyMs: Double
    var uploaded: Int64
    var downloaded: Int64
    var sizeChange: Int64
    var requests: Int64
}

/// The fleet's random walk: buckets go OFFLINE and recover so that `offlineShare` of them are
/// OFFLINE on average; each node has its own latency level, each report a lognormal jitter.
final class Fleet: Sendable {
    private struct State {
        var generator: SplitMix64
        var offline: [[Bool]]
        var nodeLatency: [Double]
    }

    private let state: Mutex<State>
    private let bucketsPerNode: Int
    private let goOffline: Double
    private let recover: Double
    private let spread: Double

    init(nodes: Int, bucketsPerNode: Int, offlineShare: Double, latencyMs: Double, spread: Double, seed: UInt64) {
        var generator = SplitMix64(seed: seed)
        self.bucketsPerNode = bucketsPerNode
        self.spread = spread
        // Steady state of a two-state chain: share = p / (p + r).
        recover = 0.3
        goOffline = offlineShare >= 1 ? 1 : offlineShare * 0.3 / (1 - offlineShare)
        let offline = (0..<nodes).map { _ in (0..<bucketsPerNode).map { _ in Double.random(in: 0..<1, using: &generator) < offlineShare } }
        let levels = (0..<nodes).map { _ in latencyMs * exp(0.5 * spread * Self.gaussian(&generator)) }
        state = Mutex(State(generator: generator, offline: offline, nodeLatency: levels))
    }

    static func gaussian(_ generator: inout SplitMix64) -> Double {
        let u1 = Double.random(in: Double.ulpOfOne..<1, using: &generator)
        let u2 = Double.random(in: 0..<1, using: &generator)
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// Moves every bucket one step and returns the states, per node.
    func advance() -> [[BucketState]] {
        state.withLock { state in
            var out: [[BucketState]] = []
            out.reserveCapacity(state.offline.count)
            for node in state.offline.indices {
                var buckets: [BucketState] = []
                buckets.reserveCapacity(bucketsPerNode)
                for bucket in 0..<bucketsPerNode {
                    let roll = Double.random(in: 0..<1, using: &state.generator)
                    if state.offline[node][bucket] { if roll < recover { state.offline[node][bucket] = false } }
                    else if roll < goOffline { state.offline[node][bucket] = true }
                    let online = !state.offline[node][bucket]
                    let latency = (state.nodeLatency[node] * exp(spread * Self.gaussian(&state.generator)) * 10).rounded() / 10
                    let uploaded = online ? Int64(exp(13 + 1.2 * Self.gaussian(&state.generator))) : 0
                    let downloaded = online ? Int64(exp(14 + 1.2 * Self.gaussian(&state.generator))) : 0
                    let requests = online ? Int64.random(in: 1...200, using: &state.generator) : 0
                    buckets.append(BucketState(
                        id: "sim-n\(node)-b\(bucket)", online: online, latencyMs: latency, uploaded: uploaded, downloaded: downloaded,
                        sizeChange: online ? uploaded - Int64.random(in: 0...max(1, uploaded), using: &state.generator) / 2 : 0,
                        requests: requests))
                }
                out.append(buckets)
            }
            return out
        }
    }
}

/// Samples and errors so far, shared by the reporting tasks.
final class Progress: Sendable {
    private struct Counts {
        var samples = 0
        var requests = 0
        var errors = 0
        var lastError: String?
        var samplesAtLastLine = 0
        var lastLine = ContinuousClock.now
    }

    private let counts = Mutex(Counts())

    func sent(samples: Int) {
        counts.withLock {
            $0.samples += samples
            $0.requests += 1
        }
    }

    func failed(_ message: String) {
        counts.withLock {
            $0.errors += 1
            $0.lastError = message
        }
    }

    /// Counts a collector answer: `stored` samples on success, an error otherwise.
    func record(_ response: SimulateCommand.Response) throws {
        guard (200..<300).contains(response.status) else {
            failed("HTTP \(response.status): \(response.text.prefix(200))")
            return
        }
        sent(samples: response.json["stored"] as? Int ?? 0)
    }

    func line(elapsed: Duration, final: Bool = false) -> String {
        counts.withLock { counts in
            let now = ContinuousClock.now
            let window = Double((now - counts.lastLine).components.seconds) + Double((now - counts.lastLine).components.attoseconds) / 1e18
            let rate = window > 0 ? Double(counts.samples - counts.samplesAtLastLine) / window : 0
            counts.samplesAtLastLine = counts.samples
            counts.lastLine = now
            let seconds = elapsed.components.seconds
            var text = "\(final ? "done" : "[\(seconds)s]") samples \(counts.samples) (\(Int(rate))/s) reports \(counts.requests) errors \(counts.errors)"
            if let last = counts.lastError, counts.errors > 0 { text += " last error: \(last)" }
            return text
        }
    }
}

/// A UDP destination, IPv4.
struct UDPTarget {
    var host: String
    var port: UInt16

    init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]), port > 0 else { return nil }
        var address = in_addr()
        let host = String(text[..<colon])
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address) == 1 else { return nil }
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
    }
}

/// A connected UDP socket (POSIX), for the simulator's datagrams.
final class UDPSocket: Sendable {
    private let descriptor: Int32

    init(target: UDPTarget) throws {
        #if canImport(Glibc)
        let kind = Int32(SOCK_DGRAM.rawValue)
        #else
        let kind = SOCK_DGRAM
        #endif
        descriptor = socket(AF_INET, kind, 0)
        guard descriptor >= 0 else { throw ValidationError("cannot open a UDP socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = target.port.bigEndian
        inet_pton(AF_INET, target.host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw ValidationError("cannot reach \(target.host):\(target.port) over UDP")
        }
    }

    deinit { close(descriptor) }

    /// Sends one datagram; returns the samples it carried.
    func send(_ datagram: ([UInt8], Int)) throws -> Int {
        let sent = datagram.0.withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }
        guard sent == datagram.0.count else { throw ValidationError("UDP send failed (errno \(errno)); datagrams larger than 64 KiB need fewer buckets per node") }
        return datagram.1
    }
}

/// A small, fast, seedable generator (SplitMix64).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

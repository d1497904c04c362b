import ArgumentParser
import AsyncHTTPClient
import CollectorModel
import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
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

    @Option(name: .long, help: "Number of nodes.")
    var nodes: Int = 10

    @Option(name: .long, help: "Buckets per node.")
    var bucketsPerNode: Int = 5

    @Option(name: .long, help: "Time between two reports of a node, such as 500ms, 1s, 1m.")
    var interval: String = "1s"

    @Option(name: .long, help: ArgumentHelp(
        "Collector base URL (default http://127.0.0.1:8080). Repeat it to spread the reports over several replicas: "
            + "each report goes to the next one, and a report that fails (no answer, 5xx, 429) is retried on the next."))
    var target: [String] = []

    @Option(name: .long, help: "Tries of one report over the targets before it counts as an error.")
    var attempts: Int = 3

    @Option(name: .long, help: ArgumentHelp(
        "Also send every report to this collector, for example a single-node reference to compare a cluster's answers with. "
            + "It may share the targets' control plane (then it reuses their node ids and tokens) or have its own."))
    var mirror: String?

    @Option(name: .long, help: "Send status and traffic as UDP line protocol to host:port instead of HTTP (registration stays HTTP).")
    var udp: String?

    @Option(name: .long, help: "Share of buckets OFFLINE at any time, 0 to 1.")
    var offlineShare: Double = 0.05

    @Option(name: .long, help: "Median bucket latency in milliseconds.")
    var latencyMs: Double = 80

    @Option(name: .long, help: "Spread of latencies: sigma of the lognormal distribution.")
    var latencySpread: Double = 0.5

    @Option(name: .long, help: "Region of the nodes.")
    var region: String = "eu-central-1"

    @Option(name: .long, help: "First two octets of the nodes' IPv4 addresses.")
    var ipPrefix: String = "10.77"

    @Option(name: .long, help: "Stop after this many seconds.")
    var duration: Double = 0

    @Option(name: .long, help: "Seconds between progress lines.")
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
        if let udp { guard UDPTarget(parsing: udp) != nil else { throw ValidationError("udp must be an IP host:port, not \(udp)") } }
        guard (1...10).contains(attempts) else { throw ValidationError("attempts must be between 1 and 10") }
        guard target.count <= 64 else { throw ValidationError("at most 64 targets") }
        if udp != nil, target.count > 1 || mirror != nil { throw ValidationError("--udp sends to one address: use one --target and no --mirror") }
    }

    /// The targets' base URLs without a trailing slash.
    var bases: [String] {
        (target.isEmpty ? ["http://127.0.0.1:8080"] : target).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// Prints `line` at once, also when standard output is a file or a pipe (a log, a test).
    private func say(_ line: String) {
        print(line)
        fflush(nil)
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
        // Failed connections fail fast: the simulator tries the next target itself.
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(2)
        configuration.connectionPool.retryConnectionEstablishment = false
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            try await simulate(client, key: privateKey)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    private func simulate(_ client: HTTPClient, key privateKey: _RSA.Signing.PrivateKey) async throws {
        let tick = Self.parseInterval(interval) ?? .seconds(1)
        let bases = bases
        let mirror = mirror.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        let fleet = Fleet(nodes: nodes, bucketsPerNode: bucketsPerNode, offlineShare: offlineShare, latencyMs: latencyMs,
                          spread: latencySpread, seed: seed ?? UInt64.random(in: 0...UInt64.max))
        let udpSender = try await udp.flatMap(UDPTarget.init(parsing:)).asyncMap { try await UDPSender(target: $0) }
        let progress = Progress()

        // Registration, with real signatures. The mirror first: when it shares the targets'
        // control plane, registering again at a target rotates the node's token, and the
        // target's answer then serves both.
        var registered: [SimulatedNode] = []
        for index in 0..<nodes {
            let ip = "\(ipPrefix).\(index / 250).\(index % 250 + 1)"
            let seconds = Int64(Date().timeIntervalSince1970)
            var mirrored: RegisterAnswer?
            if let mirror {
                // One second earlier: a signature is accepted once by a shared control plane.
                mirrored = try await register(client, bases: [mirror], ip: ip, seconds: seconds - 1, key: privateKey, progress: progress)
            }
            let answer = try await register(client, bases: bases, ip: ip, seconds: seconds, key: privateKey, progress: progress)
            let mirrorToken = mirrored.map { $0.nodeId == answer.nodeId ? answer.nodeToken : $0.nodeToken }
            registered.append(SimulatedNode(index: index, ip: ip, id: answer.nodeId, token: answer.nodeToken, mirrorToken: mirrorToken))
        }
        let destination = udp.map { " over UDP to \($0)" } ?? " over HTTP"
        say("registered \(registered.count) nodes of organization \(org) at \(bases.joined(separator: ", "))"
            + "\(mirror.map { " (mirrored to \($0))" } ?? ""); reporting every \(interval)\(destination)")

        let started = ContinuousClock.now
        let stopAt = duration > 0 ? started + .milliseconds(Int64(duration * 1000)) : nil
        var nextReport = started + .milliseconds(Int64(reportEvery * 1000))
        var nextTick = started
        var round = 0
        while stopAt.map({ ContinuousClock.now < $0 }) ?? true {
            let now = Date()
            round += 1
            let states = fleet.advance()
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for node in registered {
                    if running >= 16 { await group.next(); running -= 1 }
                    running += 1
                    let buckets = states[node.index]
                    let first = (node.index + round) % bases.count
                    group.addTask {
                        do {
                            if let udpSender {
                                let (bytes, samples) = datagram(node: node, buckets: buckets, now: now)
                                try await udpSender.send(bytes)
                                progress.sent(samples: samples)
                            } else {
                                let order = (0..<bases.count).map { bases[(first + $0) % bases.count] }
                                try await reportOverHTTP(client, bases: order, mirror: mirror, node: node, buckets: buckets, now: now,
                                                         key: privateKey, progress: progress)
                            }
                        } catch {
                            progress.failed("\(node.ip): \(error)")
                        }
                    }
                }
                await group.waitForAll()
            }
            if ContinuousClock.now >= nextReport {
                say(progress.line(elapsed: ContinuousClock.now - started))
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
        say(progress.line(elapsed: ContinuousClock.now - started, final: true))
        try await udpSender?.close()
    }

    // MARK: Reports

    /// Registers `ip` at the first of `bases` that answers, and returns the answer.
    private func register(_ client: HTTPClient, bases: [String], ip: String, seconds: Int64, key: _RSA.Signing.PrivateKey,
                          progress: Progress) async throws -> RegisterAnswer {
        let body = RegisterBody(ip: ip, region: region, timestamp: seconds, id_org: org,
                                signature: try sign("\(ip)|\(region)|\(seconds)", with: key),
                                version: "simulator-\(FlashbackCollector.version)")
        let response = try await send(client, bases: bases, path: "/register", progress: progress) { _ in
            (try JSONEncoder().encode(body), [:])
        }
        guard response.status == 200, let answer = response.decoded(RegisterAnswer.self) else {
            throw ValidationError("registering node \(ip) failed: HTTP \(response.status): \(response.text)")
        }
        return answer
    }

    private func reportOverHTTP(_ client: HTTPClient, bases: [String], mirror: String?, node: SimulatedNode, buckets: [BucketState],
                                now: Date, key: _RSA.Signing.PrivateKey, progress: Progress) async throws {
        // The samples carry the report's whole second (`createdAt`, `timestamp`), so every try
        // and the mirror store the same samples. Each try signs a new message — the signed
        // timestamp one millisecond later — as a node does: a signature is accepted once.
        let seconds = Int64(now.timeIntervalSince1970)
        let createdAt = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(Date.ISO8601FormatStyle())
        let reported = buckets.map {
            StatusBody.Bucket(unitId: $0.id, status: $0.online ? "ONLINE" : "OFFLINE", latencyMs: $0.online ? $0.latencyMs : nil, createdAt: createdAt)
        }
        func status(_ attempt: Int) throws -> (Data, [String: String]) {
            let signedAt = now.addingTimeInterval(Double(attempt) / 1000).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
            let body = StatusBody(ip: node.ip, region: region, timestamp: signedAt, id_org: org,
                                  signature: try sign("\(node.ip)|\(region)|\(signedAt)", with: key), buckets: reported)
            return (try JSONEncoder().encode(body), [:])
        }
        let traffic = try JSONEncoder().encode(buckets.map { bucket in
            TrafficBody(timestamp: seconds, bucketId: bucket.id, repoId: "sim-repo-\(node.index % 4)", upl_bytes: bucket.uploaded,
                        dwl_bytes: bucket.downloaded, size_change: bucket.sizeChange, requests: bucket.requests,
                        latency_ms: bucket.online ? bucket.latencyMs : 0)
        })
        try progress.record(try await send(client, bases: bases, path: "/node/status", progress: progress, body: status))
        try progress.record(try await send(client, bases: bases, path: "/stats/report", progress: progress) { _ in
            (traffic, ["Authorization": "Bearer \(node.token)"])
        })
        if let mirror, let token = node.mirrorToken {
            // Tries at the targets used the first `attempts` milliseconds.
            try progress.record(try await send(client, bases: [mirror], path: "/node/status", progress: progress) { try status(attempts + $0) },
                                mirrored: true)
            try progress.record(try await send(client, bases: [mirror], path: "/stats/report", progress: progress) { _ in
                (traffic, ["Authorization": "Bearer \(token)"])
            }, mirrored: true)
        }
    }

    /// POSTs the body `make(attempt)` gives to `path` of the bases in turn (attempt `n` to
    /// `bases[n % count]`) until one answers other than 5xx or 429, waiting a little longer
    /// before each new try; after `attempts` tries, the last answer or error.
    private func send(_ client: HTTPClient, bases: [String], path: String, progress: Progress,
                      body make: (Int) throws -> (Data, [String: String])) async throws -> Response {
        var attempt = 0
        while true {
            let (body, headers) = try make(attempt)
            do {
                let response = try await post(client, bases[attempt % bases.count] + path, body: body, headers: headers)
                let final = response.status < 500 && response.status != 429
                if final || attempt + 1 >= attempts { return response }
            } catch {
                if attempt + 1 >= attempts { throw error }
            }
            attempt += 1
            progress.retried()
            try await Task.sleep(for: .milliseconds(50 * attempt))
        }
    }

    /// One datagram per node and tick: `#fb1` header, then a status and a traffic line per bucket.
    /// Returns the bytes and the number of field samples in them.
    private func datagram(node: SimulatedNode, buckets: [BucketState], now: Date) -> ([UInt8], Int) {
        let nanos = Int64(now.timeIntervalSince1970 * 1e9)
        var body = ""
        var samples = 0
        typealias Status = FleetSchema.NodeStatus
        typealias Traffic = FleetSchema.BucketTraffic
        typealias Tag = FleetSchema.Tag
        for bucket in buckets {
            if bucket.online {
                body += "\(Status.measurement),\(Tag.bucket)=\(bucket.id) \(Status.status)=1i,\(Status.latency)=\(bucket.latencyMs) \(nanos)\n"
                samples += 2
            } else {
                body += "\(Status.measurement),\(Tag.bucket)=\(bucket.id) \(Status.status)=0i \(nanos)\n"
                samples += 1
            }
            body += "\(Traffic.measurement),\(Tag.bucket)=\(bucket.id),\(Tag.repo)=sim-repo-\(node.index % 4) "
                + "\(Traffic.uploadedBytes)=\(bucket.uploaded)i,\(Traffic.downloadedBytes)=\(bucket.downloaded)i,"
                + "\(Traffic.requests)=\(bucket.requests)i,\(Traffic.sizeChange)=\(bucket.sizeChange)i \(nanos)\n"
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

        /// The body as `T`, or `nil` when it is not.
        func decoded<T: Decodable>(_ type: T.Type) -> T? {
            try? JSONDecoder().decode(T.self, from: Data(text.utf8))
        }
    }

    private func post(_ client: HTTPClient, _ url: String, body: Data, headers: [String: String]) async throws -> Response {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(data: body))
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
    /// The token at the `--mirror` collector.
    var mirrorToken: String?
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
        var retries = 0
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

    /// A try that failed and is made again.
    func retried() {
        counts.withLock { $0.retries += 1 }
    }

    func failed(_ message: String) {
        counts.withLock {
            $0.errors += 1
            $0.lastError = message
        }
    }

    /// Counts a collector answer: `stored` samples on success, an error otherwise. The mirror's
    /// answers count only as errors.
    func record(_ response: SimulateCommand.Response, mirrored: Bool = false) throws {
        guard (200..<300).contains(response.status) else {
            failed("\(mirrored ? "mirror: " : "")HTTP \(response.status): \(response.text.prefix(200))")
            return
        }
        if !mirrored { sent(samples: response.decoded(ReportAnswer.self)?.stored ?? 0) }
    }

    func line(elapsed: Duration, final: Bool = false) -> String {
        counts.withLock { counts in
            let now = ContinuousClock.now
            let window = Double((now - counts.lastLine).components.seconds) + Double((now - counts.lastLine).components.attoseconds) / 1e18
            let rate = window > 0 ? Double(counts.samples - counts.samplesAtLastLine) / window : 0
            counts.samplesAtLastLine = counts.samples
            counts.lastLine = now
            let seconds = elapsed.components.seconds
            var text = "\(final ? "done" : "[\(seconds)s]") samples \(counts.samples) (\(Int(rate))/s) reports \(counts.requests) retries \(counts.retries) errors \(counts.errors)"
            if let last = counts.lastError, counts.errors > 0 { text += " last error: \(last)" }
            return text
        }
    }
}

/// A UDP destination: an IPv4 or IPv6 literal (or `localhost`) and a port.
struct UDPTarget {
    var address: SocketAddress

    init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let address = try? SocketAddress(ipAddress: host, port: port) else { return nil }
        self.address = address
    }
}

/// Sends the simulator's datagrams from one NIO datagram channel bound to an ephemeral port.
final class UDPSender: Sendable {
    private let channel: any Channel
    private let target: SocketAddress

    init(target: UDPTarget) async throws {
        self.target = target.address
        let any = target.address.protocol == .inet6 ? "::" : "0.0.0.0"
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: any, port: 0).get()
    }

    /// Sends one datagram.
    func send(_ bytes: [UInt8]) async throws {
        guard bytes.count <= 65_507 else {
            throw ValidationError("a datagram of \(bytes.count) bytes is larger than UDP allows; use fewer buckets per node")
        }
        try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: ByteBuffer(bytes: bytes))).get()
    }

    func close() async throws {
        try await channel.close()
    }
}

/// The bodies the simulator sends and the answers it reads, as the wire contract names them
/// (flashback-api.md §6, §7.4, §8.1).
struct RegisterBody: Encodable {
    var ip: String
    var region: String
    var timestamp: Int64
    var id_org: String
    var signature: String
    var provider = "SIMULATOR"
    var status = "running"
    var version: String
}

struct RegisterAnswer: Decodable {
    var nodeId: String
    var nodeToken: String
}

struct StatusBody: Encodable {
    struct Bucket: Encodable {
        var unitId: String
        var status: String
        var latencyMs: Double?
        var createdAt: String
    }

    var ip: String
    var region: String
    var timestamp: String
    var id_org: String
    var signature: String
    var buckets: [Bucket]
}

struct TrafficBody: Encodable {
    var timestamp: Int64
    var bucketId: String
    var repoId: String
    var upl_bytes: Int64
    var dwl_bytes: Int64
    var size_change: Int64
    var requests: Int64
    var latency_ms: Double
}

struct ReportAnswer: Decodable {
    var stored: Int
}

extension Optional {
    /// `map` with an async transform.
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
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

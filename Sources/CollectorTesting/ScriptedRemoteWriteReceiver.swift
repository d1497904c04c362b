import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import RemoteWrite
import SwiftProtobuf
import Synchronization

/// A remote-write receiver for tests that answers each request with the next status of a script
/// (then 204 for ever), and keeps every request it got: headers and the decoded `WriteRequest`.
/// It proves what a sender does with 5xx, 429 and 4xx answers, which a real TSDB cannot be made
/// to give on cue.
public final class ScriptedRemoteWriteReceiver: Sendable {
    /// One request as received.
    public struct Received: Sendable {
        public var status: Int
        public var headers: [String: String]
        /// `nil` when the body was not a snappy-compressed `WriteRequest`.
        package var request: Prometheus_WriteRequest?

        /// Every (metric name, labels without `__name__`, samples) of the request.
        public var series: [(name: String, labels: [String: String], samples: [(Int64, Double)])] {
            (request?.timeseries ?? []).map { one in
                var labels = Dictionary(one.labels.map { ($0.name, $0.value) }, uniquingKeysWith: { $1 })
                let name = labels.removeValue(forKey: "__name__") ?? ""
                return (name, labels, one.samples.map { ($0.timestamp, $0.value) })
            }
        }
    }

    private struct State {
        var script: [(status: Int, retryAfter: Int?)]
        var received: [Received] = []
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private final class Shared: Sendable {
        let state: Mutex<State>
        init(_ state: State) { self.state = Mutex(state) }
    }

    private let shared: Shared
    private let channel: any Channel
    public let port: Int

    public var url: String { "http://127.0.0.1:\(port)/api/v1/write" }

    /// Listens on a free loopback port; `script` gives the first answers in order.
    public init(script: [(status: Int, retryAfter: Int?)] = []) async throws {
        let shared = Shared(State(script: script))
        self.shared = shared
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(shared: shared))
                }
            }
        channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    /// Appends answers to the script.
    public func script(_ answers: [(status: Int, retryAfter: Int?)]) {
        shared.state.withLock { $0.script += answers }
    }

    /// The requests so far.
    public var received: [Received] { shared.state.withLock { $0.received } }

    /// Waits until `count` requests arrived (bounded by `timeout`); the requests so far.
    @discardableResult
    public func waitForRequests(_ count: Int, timeout: Duration = .seconds(60)) async -> [Received] {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = self.shared.state.withLock { state -> Bool in
                        if state.received.count >= count { return true }
                        state.waiters.append((count, continuation))
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            // Whichever finished first, release a waiter left behind.
            let left = self.shared.state.withLock { state in
                defer { state.waiters.removeAll() }
                return state.waiters.map(\.continuation)
            }
            for continuation in left { continuation.resume() }
        }
        return received
    }

    public func close() async {
        try? await channel.close()
    }

    private final class Handler: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let shared: Shared
        var head: HTTPRequestHead?
        var body: [UInt8] = []

        init(shared: Shared) { self.shared = shared }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let requestHead):
                head = requestHead
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                let headers = Dictionary((head?.headers ?? [:]).map { ($0.name.lowercased(), $0.value) }, uniquingKeysWith: { $1 })
                let request = Snappy.decompress(body, maxLength: 64 << 20).flatMap { try? Prometheus_WriteRequest(serializedBytes: $0) }
                let (answer, woken) = shared.state.withLock { state -> ((status: Int, retryAfter: Int?), [CheckedContinuation<Void, Never>]) in
                    let answer: (status: Int, retryAfter: Int?) = state.script.isEmpty ? (204, nil) : state.script.removeFirst()
                    state.received.append(Received(status: answer.status, headers: headers, request: request))
                    let count = state.received.count
                    let ready = state.waiters.filter { $0.count <= count }.map(\.continuation)
                    state.waiters.removeAll { $0.count <= count }
                    return (answer, ready)
                }
                for continuation in woken { continuation.resume() }
                let text = answer.status == 204 ? "" : "scripted answer \(answer.status)"
                var responseHeaders = HTTPHeaders([("Content-Length", "\(text.utf8.count)")])
                if let retryAfter = answer.retryAfter { responseHeaders.add(name: "Retry-After", value: "\(retryAfter)") }
                let response = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: answer.status), headers: responseHeaders)
                context.write(wrapOutboundOut(.head(response)), promise: nil)
                if !text.isEmpty {
                    context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
                }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

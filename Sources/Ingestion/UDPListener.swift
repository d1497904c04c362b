import CoreMetrics
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Receives the datagrams of one UDP socket. The ingest layer implements it (line protocol with
/// the `#fb1` HMAC header); the listener owns only the socket.
public protocol DatagramSink: Sendable {
    /// Handles the datagrams of one read burst of the socket (up to a few hundred), in arrival
    /// order; called from one task. A burst is the natural batch: one store write for all of it.
    func receive(_ datagrams: [ByteBuffer]) async
}

/// Collects the datagrams of one read burst on the event loop and hands them over as one batch
/// when the burst ends (`channelReadComplete`). Backpressure instead of an unbounded queue:
/// when `high` bursts wait for the consumer, the socket stops being read (`autoRead` off) until
/// the consumer is down to `low`; meanwhile the kernel's receive buffer absorbs the load and,
/// when full, drops datagrams (counted from /proc/net/udp), which costs this process nothing.
final class DatagramBatcher: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    private var pending: [ByteBuffer] = []
    private let continuation: AsyncStream<[ByteBuffer]>.Continuation
    private let depth: BurstQueueDepth

    init(continuation: AsyncStream<[ByteBuffer]>.Continuation, depth: BurstQueueDepth) {
        self.continuation = continuation
        self.depth = depth
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending.append(Self.unwrapInboundIn(data).data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard !pending.isEmpty else { return }
        let batch = pending
        pending = []
        continuation.yield(batch)
        if depth.queued.add(1, ordering: .acquiringAndReleasing).newValue >= depth.high {
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !pending.isEmpty { continuation.yield(pending) }
        pending = []
        continuation.finish()
    }
}

/// Bursts handed to the consumer and not yet processed, with the watermarks of the backpressure.
final class BurstQueueDepth: Sendable {
    let queued = Atomic<Int>(0)
    let high: Int
    let low: Int

    init(high: Int = 8, low: Int = 2) {
        self.high = high
        self.low = low
    }
}

/// A UDP socket bound to one address, feeding a ``DatagramSink`` until graceful shutdown.
///
/// Runs as a swift-service-lifecycle `Service`; graceful shutdown closes the socket, which ends
/// the receive loop after the datagram in hand.
public struct UDPListener: Service {
    /// Kernel receive buffer to request (`SO_RCVBUF`); the kernel may clamp it.
    public var receiveBufferBytes: Int
    private let address: ListenAddress
    private let sink: any DatagramSink
    private let onListening: (@Sendable () -> Void)?
    private let logger: Logger
    private let metrics: IngestMetrics?

    /// A listener on `address` feeding `sink`; `onListening` runs once the socket is bound (readiness).
    public init(address: ListenAddress, sink: any DatagramSink, receiveBufferBytes: Int = Self.defaultReceiveBufferBytes, onListening: (@Sendable () -> Void)? = nil, logger: Logger,
                metrics: IngestMetrics? = nil) {
        self.metrics = metrics
        self.address = address
        self.sink = sink
        self.receiveBufferBytes = receiveBufferBytes
        self.onListening = onListening
        self.logger = logger
    }

    /// The receive buffer asked for by default (`--udp-receive-buffer`): 8 MiB.
    public static let defaultReceiveBufferBytes = 8 << 20

    /// Datagrams read per `recvmmsg` call.
    static let messagesPerRead = 16
    /// The largest UDP payload over IPv4 (65,535 − 8 − 20), rounded up.
    static let maxDatagramBytes = 65_536

    public func run() async throws {
        // Unbounded in type, bounded in practice by the batcher's backpressure (about `high` bursts).
        let (bursts, continuation) = AsyncStream<[ByteBuffer]>.makeStream()
        let depth = BurstQueueDepth()
        let channel: any Channel
        do {
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(clamping: receiveBufferBytes))
                // Up to 16 datagrams per system call (recvmmsg), several calls per burst. NIO gives
                // each message capacity / count bytes, so the buffer holds 16 maximal datagrams:
                // a smaller one silently truncates datagrams (and their last lines).
                .channelOption(.datagramVectorReadMessageCount, value: Self.messagesPerRead)
                .channelOption(.maxMessagesPerRead, value: 4)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.messagesPerRead * Self.maxDatagramBytes))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(DatagramBatcher(continuation: continuation, depth: depth))
                    }
                }
                .bind(host: address.host, port: address.port).get()
        } catch {
            continuation.finish()
            throw ListenError(component: "UDP", address: address, underlying: error)
        }
        let granted: Int = (try? await channel.getOption(.socketOption(.so_rcvbuf))).map { Int($0) } ?? 0
        // Linux reports double the requested size (bookkeeping overhead); less than asked means clamped.
        if granted < receiveBufferBytes {
            logger.warning("the kernel clamped the UDP receive buffer; raise net.core.rmem_max to avoid drops under load",
                           metadata: ["requested": "\(receiveBufferBytes)", "granted": "\(granted)"])
        }
        logger.info("UDP listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "\(address)")"])
        onListening?()

        let dropWatch = Task { [metrics, logger] in
            guard let metrics, let port = channel.localAddress?.port else { return }
            await Self.watchKernelDrops(port: port, metrics: metrics, logger: logger)
        }
        defer { dropWatch.cancel() }
        await withGracefulShutdownHandler {
            // Ends when the channel closes: the batcher finishes the stream after the last burst.
            for await burst in bursts {
                await sink.receive(burst)
                if depth.queued.subtract(1, ordering: .acquiringAndReleasing).newValue == depth.low {
                    channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                }
            }
        } onGracefulShutdown: {
            channel.close(promise: nil)
        }
        logger.info("UDP listener stopped")
    }

    /// Datagrams the kernel dropped on sockets bound to `port` (receive buffer full), from the
    /// `drops` column of /proc/net/udp and /proc/net/udp6; `nil` where those files do not exist.
    static func kernelDrops(port: Int) -> Int? {
        let portHex = String(format: ":%04X", port)
        var total: Int?
        for file in ["/proc/net/udp", "/proc/net/udp6"] {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let columns = line.split(separator: " ", omittingEmptySubsequences: true)
                guard columns.count >= 13, columns[1].hasSuffix(portHex), let drops = Int(columns[12]) else { continue }
                total = (total ?? 0) + drops
            }
        }
        return total
    }

    /// Adds the kernel's drop count to `flashback_udp_datagrams_dropped_total` every 5 s and
    /// warns (at most once a minute) while datagrams are being dropped.
    static func watchKernelDrops(port: Int, metrics: IngestMetrics, logger: Logger) async {
        guard var last = kernelDrops(port: port) else { return }
        var lastWarning = ContinuousClock.now - .seconds(60)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            guard let now = kernelDrops(port: port) else { return }
            if now > last {
                metrics.datagramsDropped.increment(by: now - last)
                if ContinuousClock.now - lastWarning >= .seconds(60) {
                    lastWarning = .now
                    logger.warning("the kernel dropped UDP datagrams: the receive buffer was full", metadata: ["dropped": "\(now - last)"])
                }
            }
            last = max(last, now)
        }
    }
}

/// A listener could not bind its address; phrased for one line on stderr.
public struct ListenError: Error, CustomStringConvertible {
    public let component: String
    public let address: ListenAddress
    public let underlying: any Error

    /// A `ListenError` from its parts.
    public init(component: String, address: ListenAddress, underlying: any Error) {
        self.component = component
        self.address = address
        self.underlying = underlying
    }

    public var description: String {
        let reason: String
        if let io = underlying as? IOError {
            switch io.errnoCode {
            case 98: reason = "address already in use"
            case 99: reason = "address not available on this machine"
            case 13: reason = "permission denied"
            default: reason = "\(io)"
            }
        } else {
            reason = "\(underlying)"
        }
        return "cannot listen on \(address) (\(component)): \(reason)"
    }
}

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
    /// Handles one datagram. Called from one task, in arrival order; it must not block for long,
    /// or the socket's receive buffer overflows and the kernel drops datagrams.
    func receive(_ payload: ByteBuffer, from sender: SocketAddress) async
}

/// Counts datagrams and bytes; the sink used until a protocol handler is attached.
public final class CountingDatagramSink: DatagramSink {
    private let datagramCount = Atomic<Int>(0)
    private let byteCount = Atomic<Int>(0)

    public init() {}

    public func receive(_ payload: ByteBuffer, from sender: SocketAddress) async {
        datagramCount.add(1, ordering: .relaxed)
        byteCount.add(payload.readableBytes, ordering: .relaxed)
    }

    /// Datagrams received so far.
    public var datagrams: Int { datagramCount.load(ordering: .relaxed) }
    /// Payload bytes received so far.
    public var bytes: Int { byteCount.load(ordering: .relaxed) }
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
    private let readiness: ServiceReadiness?
    private let logger: Logger
    private let metrics: IngestMetrics?

    public init(address: ListenAddress, sink: any DatagramSink, receiveBufferBytes: Int = 8 << 20, readiness: ServiceReadiness?, logger: Logger,
                metrics: IngestMetrics? = nil) {
        self.metrics = metrics
        self.address = address
        self.sink = sink
        self.receiveBufferBytes = receiveBufferBytes
        self.readiness = readiness
        self.logger = logger
    }

    public func run() async throws {
        let channel: NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>
        do {
            channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(clamping: receiveBufferBytes))
                // Read up to 64 datagrams per system call (recvmmsg).
                .channelOption(.datagramVectorReadMessageCount, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .bind(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw ListenError(component: "UDP", address: address, underlying: error)
        }
        let granted: Int = (try? await channel.channel.getOption(.socketOption(.so_rcvbuf))).map { Int($0) } ?? 0
        // Linux reports double the requested size (bookkeeping overhead); less than asked means clamped.
        if granted < receiveBufferBytes {
            logger.warning("the kernel clamped the UDP receive buffer; raise net.core.rmem_max to avoid drops under load",
                           metadata: ["requested": "\(receiveBufferBytes)", "granted": "\(granted)"])
        }
        logger.info("UDP listening", metadata: ["address": "\(channel.channel.localAddress.map { "\($0)" } ?? "\(address)")"])
        readiness?.markUp(.udp)

        let underlying = channel.channel
        let dropWatch = Task { [metrics, logger] in
            guard let metrics, let port = underlying.localAddress?.port else { return }
            await Self.watchKernelDrops(port: port, metrics: metrics, logger: logger)
        }
        defer { dropWatch.cancel() }
        try await withGracefulShutdownHandler {
            do {
                try await channel.executeThenClose { inbound, _ in
                    for try await envelope in inbound {
                        await sink.receive(envelope.data, from: envelope.remoteAddress)
                    }
                }
            } catch {
                // A closed channel ends the loop with an error on some paths; after shutdown it is expected.
                if !underlying.isActive, Task.isShuttingDownGracefully { return }
                throw error
            }
        } onGracefulShutdown: {
            underlying.close(promise: nil)
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

/// Runs an HTTP application and reports a failure to bind as a ``ListenError``.
public struct HTTPListenerService<Base: Service>: Service {
    private let base: Base
    private let address: ListenAddress

    public init(_ base: Base, address: ListenAddress) {
        self.base = base
        self.address = address
    }

    public func run() async throws {
        do {
            try await base.run()
        } catch let error as IOError {
            throw ListenError(component: "HTTP", address: address, underlying: error)
        }
    }
}

import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that counts the connections it gets and answers each with an
/// empty `200 OK`: the target of a server-side-request-forgery test, which must see no
/// connection while the guard is on.
public final class ConnectionProbe: Sendable {
    public let port: Int
    private let fd: Int32
    private let state = State()

    final class State: Sendable {
        let accepted = Atomic<Int>(0)
        let stopped = Atomic<Bool>(false)
    }

    /// The defaults, as documented on each property.
    public init() throws {
        #if canImport(Glibc)
        guard let (fd, port) = bindLoopbackSocket(type: Int32(SOCK_STREAM.rawValue)) else { throw POSIXError(.EADDRINUSE) }
        guard listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        self.fd = fd
        self.port = port
        let listener = fd
        let state = self.state
        Thread.detachNewThread {
            while !state.stopped.load(ordering: .acquiring) {
                var poller = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 100) > 0 else { continue }
                let client = accept(listener, nil, nil)
                guard client >= 0 else { continue }
                state.accepted.add(1, ordering: .releasing)
                // Read the request head first: closing with unread bytes resets the connection,
                // and a client may then retry on a new one.
                var timeout = timeval(tv_sec: 2, tv_usec: 0)
                setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                var head: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                while head.count < 65_536 {
                    let count = chunk.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
                    if count <= 0 { break }
                    head += chunk[0..<count]
                    if head.count >= 4, head.suffix(4).elementsEqual([13, 10, 13, 10]) { break }
                }
                let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
                _ = answer.withUnsafeBytes { Glibc.send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                close(client)
            }
        }
        #else
        throw POSIXError(.ENOTSUP)
        #endif
    }

    /// Connections accepted so far.
    public var connections: Int { state.accepted.load(ordering: .acquiring) }

    deinit {
        state.stopped.store(true, ordering: .releasing)
        #if canImport(Glibc)
        close(fd)
        #endif
    }
}

import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A socket bound to a kernel-chosen port on 127.0.0.1, and that port; `nil` when the kernel
/// refuses. The caller closes the descriptor.
func bindLoopbackSocket(type: Int32) -> (fd: Int32, port: Int)? {
    let fd = socket(AF_INET, type, 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else {
        close(fd)
        return nil
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Ports ``freeLoopbackPort(udp:)`` hands out: below Linux's ephemeral range (32768-60999 by
/// default), where the kernel never picks the source port of an outgoing connection, and each
/// port at most once a process.
let testPorts = Mutex<Range<Int>>(20_000 + Int(getpid() % 200) * 50..<32_000)

/// A loopback port no one listens on, for a server the test starts next (or for a test that
/// needs a port that refuses connections).
///
/// A port the kernel picked for `bind(0)` and released again lies in the ephemeral range: a
/// client's connection may take it as its source port a moment later, and a server then cannot
/// bind it, or a "closed" port answers as another test's server (both seen in the full suite).
/// These ports come from below that range, each handed out once, and are checked free (TCP and
/// UDP) when handed out.
public func freeLoopbackPort(udp: Bool = false) -> Int {
    while let port = testPorts.withLock({ ports in ports.popFirst() }) {
        if portIsFree(port) { return port }
    }
    preconditionFailure("no free loopback port left below the ephemeral range")
}

/// Whether `port` on 127.0.0.1 can be bound, as TCP and as UDP.
private func portIsFree(_ port: Int) -> Bool {
    [Int32(SOCK_STREAM.rawValue), Int32(SOCK_DGRAM.rawValue)].allSatisfy { type in
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// Sends one UDP datagram to a loopback port.
public func sendUDP(_ payload: [UInt8], port: Int) {
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    precondition(fd >= 0, "socket() failed")
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = payload.withUnsafeBytes { bytes in
        withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
    }
}

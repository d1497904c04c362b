import Foundation
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

/// Asks the kernel for a free loopback port (bind to port 0, read it back, close).
///
/// Another process could take the port before the test binds it; on a test machine this window
/// is small enough, and a collision shows up as a clear "address already in use" failure.
public func freeLoopbackPort(udp: Bool = false) -> Int {
    guard let (fd, port) = bindLoopbackSocket(type: Int32(udp ? SOCK_DGRAM.rawValue : SOCK_STREAM.rawValue)) else {
        preconditionFailure("binding a free loopback port failed")
    }
    close(fd)
    return port
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

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where the collector may send a request that a caller can aim (bucket validation): the
/// server-side-request-forgery guard of DESIGN.md §5.
///
/// A target must be an `http`/`https` URL whose host is allowed: either named in `allowedHosts`
/// (exactly, case-insensitive), or resolving only to public addresses — none of loopback,
/// link-local (169.254.0.0/16, fe80::/10), private (10/8, 172.16/12, 192.168/16), unique-local
/// (fc00::/7), carrier-grade NAT, unspecified, multicast or reserved ranges, including IPv4
/// addresses embedded in IPv6 (`::ffff:a.b.c.d`, NAT64, 6to4). Every address the name resolves
/// to is checked, so one public record next to a private one does not pass. The validator also
/// refuses redirects, so a public endpoint cannot bounce the request inward.
///
/// `allowPrivateAddresses` (`--validate-allow-private`) turns the address check off, for
/// S3-compatible services on a private network and for tests against a local moto.
public struct OutboundPolicy: Sendable, Equatable {
    public var allowPrivateAddresses: Bool
    /// Host names (or address literals) allowed whatever they resolve to, lowercased.
    public var allowedHosts: Set<String>

    /// A `OutboundPolicy` from its parts.
    public init(allowPrivateAddresses: Bool = false, allowedHosts: Set<String> = []) {
        self.allowPrivateAddresses = allowPrivateAddresses
        self.allowedHosts = Set(allowedHosts.map { $0.lowercased() })
    }

    /// The default: public addresses only.
    public static let publicOnly = OutboundPolicy()
    /// Anything reachable (`--validate-allow-private`).
    public static let allowAll = OutboundPolicy(allowPrivateAddresses: true)

    /// Why a target was refused, in words for the caller.
    public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Checks `url`: scheme, then every address its host resolves to.
    /// - Throws: ``Refusal`` naming what is not allowed.
    public func check(_ url: URL) async throws(Refusal) {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw Refusal(message: "endpoint must be an http:// or https:// URL")
        }
        guard var host = url.host, !host.isEmpty else { throw Refusal(message: "endpoint has no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if allowPrivateAddresses || allowedHosts.contains(host.lowercased()) { return }
        let addresses = await Self.resolve(host)
        guard !addresses.isEmpty else { throw Refusal(message: "DNS lookup failed for \(host)") }
        if let inner = addresses.first(where: { !Self.isPublic($0) }) {
            throw Refusal(message: "endpoint host \(host) resolves to a non-public address (\(Self.format(inner))); "
                + "the operator can allow it with --validate-allow-private or --validate-allow-host")
        }
    }

    /// The addresses `host` resolves to (address literals included), as 4 or 16 bytes each.
    static func resolve(_ host: String) async -> [[UInt8]] {
        await withCheckedContinuation { continuation in
            // getaddrinfo blocks: keep it off the cooperative pool.
            Thread.detachNewThread {
                continuation.resume(returning: resolveBlocking(host))
            }
        }
    }

    static func resolveBlocking(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [[UInt8]] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let entry = cursor {
            if let address = entry.pointee.ai_addr {
                switch Int32(entry.pointee.ai_family) {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                        var raw = pointer.pointee.sin_addr
                        addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
                    }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                        var raw = pointer.pointee.sin6_addr
                        addresses.append(withUnsafeBytes(of: &raw) { Array($0) })
                    }
                default: break
                }
            }
            cursor = entry.pointee.ai_next
        }
        return addresses
    }

    /// Whether an IPv4 (4 bytes) or IPv6 (16 bytes) address is a public unicast address.
    public static func isPublic(_ address: [UInt8]) -> Bool {
        switch address.count {
        case 4: return isPublicV4(address)
        case 16: return isPublicV6(address)
        default: return false
        }
    }

    static func isPublicV4(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return false                 // this network, private, loopback
        case (100, 64...127): return false                           // carrier-grade NAT
        case (169, 254): return false                                // link-local (cloud metadata)
        case (172, 16...31): return false                            // private
        case (192, 168): return false                                // private
        case (192, 0) where a[2] == 0 || a[2] == 2: return false     // IETF protocol assignments, TEST-NET-1
        case (198, 18...19): return false                            // benchmarking
        case (198, 51) where a[2] == 100: return false               // TEST-NET-2
        case (203, 0) where a[2] == 113: return false                // TEST-NET-3
        case (224...255, _): return false                            // multicast, reserved, broadcast
        default: return true
        }
    }

    static func isPublicV6(_ a: [UInt8]) -> Bool {
        let prefix = Array(a[0..<12])
        if a.allSatisfy({ $0 == 0 }) { return false }                                        // ::
        if a[0..<15].allSatisfy({ $0 == 0 }) && a[15] == 1 { return false }                   // ::1
        if prefix == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF] { return isPublicV4(Array(a[12..<16])) }   // ::ffff:a.b.c.d
        if a[0..<12].allSatisfy({ $0 == 0 }) { return isPublicV4(Array(a[12..<16])) }         // ::a.b.c.d (deprecated)
        if a[0] == 0x00, a[1] == 0x64, a[2] == 0xFF, a[3] == 0x9B { return isPublicV4(Array(a[12..<16])) } // 64:ff9b::/96 NAT64
        if a[0] == 0x20, a[1] == 0x02 { return isPublicV4(Array(a[2..<6])) }                  // 2002::/16 6to4
        if a[0] == 0xFE, a[1] & 0xC0 == 0x80 { return false }                                  // fe80::/10 link-local
        if a[0] == 0xFE, a[1] & 0xC0 == 0xC0 { return false }                                  // fec0::/10 site-local
        if a[0] & 0xFE == 0xFC { return false }                                                // fc00::/7 unique-local
        if a[0] == 0xFF { return false }                                                       // multicast
        if a[0] == 0x20, a[1] == 0x01, a[2] == 0x0D, a[3] == 0xB8 { return false }              // documentation
        return true
    }

    static func format(_ address: [UInt8]) -> String {
        if address.count == 4 { return address.map(String.init).joined(separator: ".") }
        return stride(from: 0, to: address.count, by: 2).map { String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}

import Foundation

/// Where the control plane's PostgreSQL is: `postgres://user[:password]@host[:port]/database`
/// (`postgresql://` too), with `sslmode` (`disable`, `prefer`, `require`, `verify-full`) and
/// `sslrootcert` (a PEM file of trusted CAs) as libpq reads them.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    /// How the connection uses TLS.
    public enum TLSMode: String, Sendable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, without checking its certificate (libpq's default).
        case prefer
        /// TLS always, without checking the certificate (libpq's `require`).
        case require
        /// TLS always, the certificate checked against the trusted CAs and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode
    /// PEM file of CAs to trust for `verify-full` (the system's when `nil`).
    public var rootCertificatePath: String?

    /// Parses a URL; the error names what is wrong (never the password).
    public init(_ text: String) throws(PostgresURLError) {
        guard text.count <= 2048, let components = URLComponents(string: text) else {
            throw PostgresURLError("the registry URL is not a URL (expected postgres://user@host:port/database)")
        }
        guard components.scheme == "postgres" || components.scheme == "postgresql" else {
            throw PostgresURLError("the registry URL must start with postgres:// (got \(components.scheme.map { "\($0)://" } ?? "no scheme"))")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresURLError("the registry URL names no host") }
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 5432
        guard (1...65_535).contains(port) else { throw PostgresURLError("the registry URL's port \(port) is out of range") }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresURLError("the registry URL names no user (postgres://user@host/database)")
        }
        username = user.removingPercentEncoding ?? user
        password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? username : (path.removingPercentEncoding ?? path)
        tls = .prefer
        rootCertificatePath = nil
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable", "allow": tls = .disable
                case "prefer": tls = .prefer
                case "require": tls = .require
                case "verify-full", "verify-ca": tls = .verifyFull
                default: throw PostgresURLError("sslmode \(item.value ?? "") is not one of disable, prefer, require, verify-full")
                }
            case "sslrootcert": rootCertificatePath = item.value
            case "application_name", "connect_timeout": continue
            default: throw PostgresURLError("the registry URL has an unknown parameter \(item.name) (known: sslmode, sslrootcert)")
            }
        }
    }

    /// The URL without its password, for logs.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(username)@\(shownHost):\(port)/\(database)?sslmode=\(tls.rawValue)"
    }
}

/// A registry URL that cannot be used, and why.
public struct PostgresURLError: Error, CustomStringConvertible, Equatable {
    public let description: String
    init(_ description: String) { self.description = description }
}

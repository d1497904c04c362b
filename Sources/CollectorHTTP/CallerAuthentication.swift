import CollectorAuth
import CollectorModel
import Foundation
import HTTPTypes
import Hummingbird
import Ingestion
import Registry

/// Who is calling: the one place the `Authorization` header is read.
///
/// A credential is sent as `Authorization: Bearer <credential>` or `Token <credential>` (scheme
/// case-insensitive; InfluxDB v2 clients send `Token`). Node tokens start with `fbn1.`; anything
/// else is verified as a user token (JWT). Every refusal is a 401 with a `WWW-Authenticate`
/// challenge; the handler does not run.
public struct CallerAuthentication: Sendable {
    let registry: NodeRegistry
    let tokens: TokenAuthority

    /// Authenticates node tokens with `registry` and user tokens with `tokens`.
    public init(registry: NodeRegistry, tokens: TokenAuthority) {
        self.registry = registry
        self.tokens = tokens
    }

    /// An authenticated caller.
    public enum Caller: Sendable {
        case node(BridgeNode)
        case user(CallerIdentity)

        /// The organization the caller acts for (`""`: a public node).
        public var organization: String {
            switch self {
            case .node(let node): return node.organization ?? ""
            case .user(let identity): return identity.organization
            }
        }

        /// The caller as a writer of samples.
        public var writer: SampleWriter {
            switch self {
            case .node(let node): return .node(id: node.id, organization: node.organization ?? "")
            case .user(let identity): return .organization(identity.organization)
            }
        }
    }

    /// The credential of the request's `Authorization` header, or `nil` when there is none or
    /// its scheme is not `Bearer`/`Token`.
    public static func credential(in headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, ["bearer", "token"].contains(parts[0].lowercased()) else { return nil }
        let credential = parts[1].trimmingCharacters(in: .whitespaces)
        return credential.isEmpty ? nil : credential
    }

    /// A node (node token) or a user (JWT).
    /// - Parameter missing: the message when no credential was sent.
    public func caller(_ request: Request, missing: String = "missing token: send a node token or an organization token as Authorization: Bearer") async throws -> Caller {
        guard let credential = Self.credential(in: request.headers) else { throw Self.challenge(missing, error: nil) }
        if credential.hasPrefix("fbn1.") { return .node(try await node(credential: credential)) }
        return .user(try await user(credential: credential))
    }

    /// The node of a node token, or 401.
    public func node(_ request: Request) async throws -> BridgeNode {
        guard let credential = Self.credential(in: request.headers) else { throw Self.challenge("missing node token", error: nil) }
        return try await node(credential: credential)
    }

    /// The verified user of a JWT, or 401.
    public func user(_ request: Request) async throws -> CallerIdentity {
        guard let credential = Self.credential(in: request.headers) else { throw Self.unauthorized(.missing) }
        return try await user(credential: credential)
    }

    /// The user of the request's token when it sends one (401 when that token is bad), else `nil`.
    public func optionalUser(_ request: Request) async throws -> CallerIdentity? {
        guard let credential = Self.credential(in: request.headers) else { return nil }
        return try await user(credential: credential)
    }

    private func node(credential: String) async throws -> BridgeNode {
        guard let node = await registry.authenticateRefreshing(nodeToken: credential) else {
            throw Self.challenge("invalid or revoked node token", error: "invalid_token")
        }
        return node
    }

    private func user(credential: String) async throws -> CallerIdentity {
        do {
            return try await tokens.verify(credential)
        } catch {
            throw Self.unauthorized(error)
        }
    }

    static func unauthorized(_ error: TokenError) -> APIError {
        challenge(error.description, error: error == .missing ? nil : "invalid_token")
    }

    static func challenge(_ message: String, error: String?) -> APIError {
        APIError(.unauthorized, message, headers: [.wwwAuthenticate: error.map { "Bearer error=\"\($0)\"" } ?? "Bearer"])
    }
}

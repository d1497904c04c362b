import Foundation
import HTTPTypes
import Hummingbird
import Registry

/// Requires a node credential (`Authorization: Bearer fbn1.…`, or `Token fbn1.…` as InfluxDB v2
/// clients send it) and puts the node into the context; 401 otherwise.
public struct NodeAuthMiddleware: RouterMiddleware {
    public typealias Context = CollectorRequestContext

    private let registry: NodeRegistry

    public init(registry: NodeRegistry) {
        self.registry = registry
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let value = request.headers[.authorization] else {
            throw APIError(.unauthorized, "missing node token", headers: [.wwwAuthenticate: "Bearer"])
        }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, ["bearer", "token"].contains(parts[0].lowercased()),
              let node = registry.authenticate(nodeToken: String(parts[1]).trimmingCharacters(in: .whitespaces)) else {
            throw APIError(.unauthorized, "invalid or revoked node token", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
        var context = context
        context.node = node
        return try await next(request, context)
    }
}

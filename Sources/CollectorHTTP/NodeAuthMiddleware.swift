import Hummingbird

/// Requires a node credential (`Authorization: Bearer fbn1.…`, or `Token fbn1.…` as InfluxDB v2
/// clients send it) and puts the node into the context; 401 otherwise.
public struct NodeAuthMiddleware: RouterMiddleware {
    /// The collector's request context.
    public typealias Context = CollectorRequestContext

    private let authentication: CallerAuthentication

    /// A `NodeAuthMiddleware` from its parts.
    public init(authentication: CallerAuthentication) {
        self.authentication = authentication
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.node = try await authentication.node(request)
        return try await next(request, context)
    }
}

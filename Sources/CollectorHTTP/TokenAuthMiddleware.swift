import Hummingbird

/// Requires a user token (`Authorization: Bearer <JWT>`) and puts the verified caller into the
/// context.
///
/// A missing, malformed, expired or wrongly signed token answers 401 with the Flashback error
/// body and a `WWW-Authenticate` challenge; the handler does not run.
public struct TokenAuthMiddleware: RouterMiddleware {
    /// The collector's request context.
    public typealias Context = CollectorRequestContext

    private let authentication: CallerAuthentication

    /// A `TokenAuthMiddleware` from its parts.
    public init(authentication: CallerAuthentication) {
        self.authentication = authentication
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.identity = try await authentication.user(request)
        return try await next(request, context)
    }
}

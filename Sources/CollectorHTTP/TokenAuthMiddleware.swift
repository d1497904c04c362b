import CollectorAuth
import CollectorModel
import Foundation
import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <JWT>` and puts the verified caller into the context.
///
/// A missing, malformed, expired or wrongly signed token answers 401 with the Flashback error
/// body and a `WWW-Authenticate` challenge; the handler does not run.
public struct TokenAuthMiddleware: RouterMiddleware {
    public typealias Context = CollectorRequestContext

    private let authority: TokenAuthority

    public init(authority: TokenAuthority) {
        self.authority = authority
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = Self.bearerToken(in: request.headers) else {
            throw Self.unauthorized(.missing)
        }
        var context = context
        do {
            context.identity = try await authority.verify(token)
        } catch {
            throw Self.unauthorized(error)
        }
        return try await next(request, context)
    }

    /// The token of an `Authorization: Bearer …` header (scheme case-insensitive), if any.
    static func bearerToken(in headers: HTTPFields) -> String? {
        guard let value = headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }

    static func unauthorized(_ error: TokenError) -> APIError {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = error == .missing ? "Bearer" : "Bearer error=\"invalid_token\""
        return APIError(.unauthorized, error.description, headers: headers)
    }
}

import Foundation
import Hummingbird
import Logging
import Registry

/// `POST /apikey/authorize`: a bridge node asks whether an S3 request an app signed with a repo
/// key may run. Authenticated with the node's credential; 200 allow, 403 deny.
struct AuthorizeRoutes {
    let authorizer: RepoKeyAuthorizer
    let now: @Sendable () -> Date

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.post("/apikey/authorize") { request, context -> JSONResponse<AuthorizeResponse> in
            guard let node = context.node else { throw APIError(.unauthorized, "missing node token") }
            let body = try await JSONRequest.decode(AuthorizeRequest.self, from: request, context: context)
            guard body.path.hasPrefix("/"), body.path.count <= 4096, (body.query ?? "").count <= 8192, body.headers.pairs.count <= 200 else {
                throw APIError(.badRequest, "path must start with '/', and path, query and headers must be of reasonable size")
            }
            let signed = SigV4.Request(method: body.method, path: body.path, query: body.query ?? "", headers: body.headers.pairs)
            let decision = authorizer.authorize(
                signed, nodeOrganization: node.organization, isPublicNode: node.organization == nil,
                bucketHint: body.bucket.nonEmpty, now: now())
            context.logger.debug("authorize", metadata: ["node": "\(node.id)", "allow": "\(decision.allow)"])
            return JSONResponse(
                status: decision.allow ? .ok : .forbidden,
                body: AuthorizeResponse(
                    success: decision.allow, allow: decision.allow, message: decision.message,
                    operation: decision.operation?.rawValue, repoId: decision.repoId, apiKeyId: decision.apiKeyId,
                    accessType: decision.accessType?.rawValue))
        }
    }
}

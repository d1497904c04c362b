import Catalog
import FlashbackWire
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
            try body.check()
            let decision = await authorizer.authorize(
                body.signedRequest, nodeOrganization: node.organization, isPublicNode: node.organization == nil,
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

import Catalog
import CollectorModel
import FlashbackWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Registry

/// Buckets, repositories and repo storage API keys (flashback-api.md §4, §5, §9).
///
/// Everything is scoped to the caller's organization and workspaces; USER (and the other
/// non-admin roles) may read, ADMINISTRATORS and OWNER may change.
struct CatalogRoutes {
    let catalog: StorageCatalog
    let validator: BucketValidator

    static func scope(_ context: CollectorRequestContext) throws -> CatalogScope {
        let identity = try context.requireIdentity()
        return CatalogScope(organization: identity.organization, workspaces: identity.workspaces)
    }

    /// The scope of a caller allowed to change things (ADMINISTRATORS or OWNER); 403 otherwise.
    static func writeScope(_ context: CollectorRequestContext) throws -> CatalogScope {
        let identity = try context.requireIdentity()
        guard identity.role.canAdministerOrganization else {
            throw APIError(.forbidden, "Insufficient permissions: only OWNER and ADMINISTRATOR roles can change buckets, repositories and keys")
        }
        return CatalogScope(organization: identity.organization, workspaces: identity.workspaces)
    }

    func bucketDTO(_ bucket: StorageBucket) -> BucketDTO {
        BucketDTO(bucket, repos: catalog.repositories(usingBucket: bucket.id))
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        for prefix in ["/bucket", "/unit"] {
            registerBuckets(on: router, prefix: prefix)
        }
        registerRepositories(on: router)
        registerKeys(on: router)
    }

    // MARK: Buckets

    func registerBuckets(on router: some RouterMethods<CollectorRequestContext>, prefix: String) {
        // The legacy `/unit` routes answer with the `unit` names too (flashback-api.md Appendix B).
        let legacy = prefix == "/unit"
        router.get(RouterPath(prefix)) { request, context -> JSONResponse<BucketListResponse> in
            let scope = try Self.scope(context)
            let workspace = request.uri.queryParameters.get("workspaceId").nonEmpty
            return JSONResponse(body: BucketListResponse(buckets: catalog.buckets(scope, workspaceId: workspace).map(bucketDTO), legacy: legacy))
        }

        router.get(RouterPath("\(prefix)/available")) { request, context -> JSONResponse<[BucketDTO]> in
            let scope = try Self.scope(context)
            let workspace = request.uri.queryParameters.get("workspaceId").nonEmpty
            return JSONResponse(body: catalog.availableBuckets(scope, workspaceId: workspace).map(bucketDTO))
        }

        router.post(RouterPath(prefix)) { request, context -> Response in
            let scope = try Self.writeScope(context)
            let body = try await JSONRequest.decode(BucketRequest.self, from: request, context: context)
            guard let name = body.name.nonEmpty else { throw APIError(.badRequest, "missing field name") }
            guard let providerBucket = body.bucket.nonEmpty else { throw APIError(.badRequest, "missing field bucket") }
            guard let typeText = body.storageType.nonEmpty else { throw APIError(.badRequest, "missing field storageType") }
            guard let type = StorageType(parsing: typeText) else {
                throw APIError(.badRequest, "unknown storageType \(typeText); expected S3, GCS, BLOB or AZURE")
            }
            guard let workspace = body.workspaceId.nonEmpty else { throw APIError(.badRequest, "missing field workspaceId") }
            var draft = try Self.draft(from: body)
            if type == .gcs, let key = draft.key, GCSServiceAccount.isDelegated(key: key, secret: draft.secret) {
                throw APIError(.badRequest, "delegated GCS access (a client email without a private key) needs an operator identity allowed "
                    + "to impersonate \(key); this collector has none configured: send the service account's private key as secret")
            }
            draft.name = name
            draft.bucket = providerBucket
            draft.storageType = type
            draft.workspaceId = workspace
            let validation = try await validateIfPossible(draft, storedSecret: nil)
            let bucket = try await catalog.createBucket(scope, draft, validation: validation)
            context.logger.info("bucket created", metadata: ["bucket": "\(bucket.id)", "organization": "\(scope.organization)"])
            return try JSONResponse(body: BucketWriteResponse(bucketId: bucket.id, unitId: legacy ? bucket.id : nil, status: bucket.status, latency_ms: bucket.latencyMs))
                .response(from: request, context: context)
        }

        router.put(RouterPath("\(prefix)/:bucketId")) { request, context -> JSONResponse<BucketWriteResponse> in
            let scope = try Self.writeScope(context)
            let id = try context.parameters.require("bucketId")
            let existing = try catalog.bucket(scope, id: id)
            let body = try await JSONRequest.decode(BucketRequest.self, from: request, context: context)
            var draft = try Self.draft(from: body)
            draft.name = body.name.nonEmpty
            draft.bucket = body.bucket.nonEmpty
            draft.workspaceId = body.workspaceId.nonEmpty
            if let typeText = body.storageType.nonEmpty {
                guard let type = StorageType(parsing: typeText) else {
                    throw APIError(.badRequest, "unknown storageType \(typeText); expected S3, GCS, BLOB or AZURE")
                }
                draft.storageType = type
            }
            // Re-validate when what reaches the provider changed and credentials are at hand.
            let reaches = draft.bucket != nil || draft.storageType != nil || draft.key != nil || draft.secret != nil || draft.endpoint != nil || draft.region != nil
            var merged = draft
            merged.bucket = draft.bucket ?? existing.bucket
            merged.storageType = draft.storageType ?? existing.storageType
            merged.key = draft.key ?? existing.key
            merged.endpoint = draft.endpoint ?? existing.endpoint
            merged.region = draft.region ?? existing.region
            let validation = reaches ? try await validateIfPossible(merged, storedSecret: catalog.providerSecret(of: existing)) : nil
            let bucket = try await catalog.updateBucket(scope, id: id, draft, validation: validation)
            return JSONResponse(body: BucketWriteResponse(bucketId: bucket.id, unitId: legacy ? bucket.id : nil, status: bucket.status, latency_ms: bucket.latencyMs))
        }

        router.delete(RouterPath("\(prefix)/:bucketId")) { _, context -> JSONResponse<ActionResponse> in
            let scope = try Self.writeScope(context)
            let id = try context.parameters.require("bucketId")
            try await catalog.deleteBucket(scope, id: id)
            return JSONResponse(body: ActionResponse(message: "Bucket deleted successfully"))
        }

        router.post(RouterPath("\(prefix)/:bucketId/validate")) { request, context -> JSONResponse<ValidationResponse> in
            let scope = try Self.scope(context)
            let id = try context.parameters.require("bucketId")
            let bucket = try catalog.bucket(scope, id: id)
            let raw = try await JSONRequest.body(of: request, context: context)
            var body = ValidateRequest()
            if raw.readableBytes > 0 {
                do {
                    body = try JSONDecoder().decode(ValidateRequest.self, from: Data(raw.readableBytesView))
                } catch let error as DecodingError {
                    throw APIError(.badRequest, JSONRequest.describe(error))
                }
            }
            for (field, value) in [("bucket", body.bucket), ("key", body.key), ("secret", body.secret), ("endpoint", body.endpoint), ("region", body.region)] {
                try CatalogFieldLimits.check(field, value)
            }
            // Aiming the signed request elsewhere, or signing it with other credentials, is a
            // change of the bucket's settings in all but name: administrators only.
            if body.endpoint.nonEmpty != nil || body.key.nonEmpty != nil || body.secret.nonEmpty != nil {
                guard try context.requireIdentity().role.canAdministerOrganization else {
                    throw APIError(.forbidden, "Insufficient permissions: only OWNER and ADMINISTRATOR roles may validate with another endpoint, key or secret")
                }
            }
            if let endpoint = body.endpoint.nonEmpty { try Self.checkEndpoint(endpoint) }
            // The official client always names the bucket: naming the stored one still validates
            // the stored settings, and the result becomes the bucket's status.
            let usesStored = body.key.nonEmpty == nil && body.secret.nonEmpty == nil && body.endpoint.nonEmpty == nil
                && (body.bucket.nonEmpty == nil || body.bucket == bucket.bucket) && (body.region.nonEmpty == nil || body.region == bucket.region)
            let target = BucketEndpoint(
                storageType: bucket.storageType, bucket: body.bucket.nonEmpty ?? bucket.bucket,
                key: body.key.nonEmpty ?? bucket.key, secret: body.secret.nonEmpty ?? catalog.providerSecret(of: bucket),
                endpoint: body.endpoint.nonEmpty ?? bucket.endpoint, region: body.region.nonEmpty ?? bucket.region)
            let result = await validator.validate(target)
            if usesStored { try await catalog.recordValidation(bucketID: bucket.id, result) }
            return JSONResponse(
                status: result.isOnline ? .ok : .badRequest,
                body: ValidationResponse(success: result.isOnline, status: result.status, latency_ms: result.latencyMs, message: result.message))
        }
    }

    /// The optional fields shared by create and update, with length checks.
    static func draft(from body: BucketRequest) throws -> BucketDraft {
        for (field, value) in [("name", body.name), ("bucket", body.bucket), ("key", body.key), ("secret", body.secret),
                               ("endpoint", body.endpoint), ("region", body.region), ("workspaceId", body.workspaceId),
                               ("walletAddress", body.walletAddress), ("projectId", body.projectId)] {
            try CatalogFieldLimits.check(field, value)
        }
        if let endpoint = body.endpoint.nonEmpty { try checkEndpoint(endpoint) }
        if body.apiKeyUuid.nonEmpty != nil {
            throw APIError(.badRequest, "apiKeyUuid (stored provider credentials) is not supported; send key and secret")
        }
        var draft = BucketDraft()
        draft.key = body.key.nonEmpty
        draft.secret = body.secret.nonEmpty
        draft.endpoint = body.endpoint.nonEmpty
        draft.region = body.region.nonEmpty
        draft.projectId = body.projectId.nonEmpty
        draft.walletAddress = body.walletAddress.nonEmpty
        return draft
    }

    /// 400 unless `endpoint` is an `http://` or `https://` URL with a host (where it may point is
    /// checked when a request is about to go there: ``OutboundPolicy``).
    static func checkEndpoint(_ endpoint: String) throws {
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false else {
            throw APIError(.badRequest, "endpoint must be an http:// or https:// URL")
        }
    }

    /// Validates against the provider when credentials are available; a failure is a 400 that
    /// says what failed, and nothing is stored.
    func validateIfPossible(_ draft: BucketDraft, storedSecret: String?) async throws -> BucketValidationResult? {
        guard let key = draft.key, let secret = draft.secret ?? storedSecret, let bucket = draft.bucket, let type = draft.storageType else { return nil }
        let result = await validator.validate(BucketEndpoint(storageType: type, bucket: bucket, key: key, secret: secret, endpoint: draft.endpoint, region: draft.region))
        guard result.isOnline else {
            throw APIError(.badRequest, "credential check failed: \(result.message)")
        }
        return result
    }

    // MARK: Repositories

    func repoDTO(_ repo: Repository, scope: CatalogScope) -> RepoDTO {
        let links = repo.buckets.map { link in
            RepoDTO.Link(folder: link.folder, master: link.master, bucketId: link.bucketId,
                         bucket: (try? catalog.bucket(scope, id: link.bucketId)).map(bucketDTO))
        }
        let keys = ((try? catalog.apiKeys(scope, repoId: repo.id)) ?? []).map(APIKeyDTO.init)
        return RepoDTO(id: repo.id, name: repo.name, storageType: repo.storageType.rawValue, mode: repo.mode.rawValue,
                       workspaceId: repo.workspaceId, buckets: links, apiKeys: keys, createdAt: repo.createdAt.flashbackTimestamp,
                       walletAddress: repo.walletAddress)
    }

    func validateRepository(_ request: Request, context: CollectorRequestContext, pathID: String?) async throws -> JSONResponse<RepoValidationResponse> {
        let scope = try Self.scope(context)
        let body = try await JSONRequest.decode(RepoValidateRequest.self, from: request, context: context)
        let links = try Self.links(body.repoBuckets ?? body.repoUnits ?? [], scope: scope, catalog: catalog)
        try catalog.validateRepository(scope, mode: try Self.mode(body.mode), buckets: links, repoId: pathID ?? body.repoId.nonEmpty)
        return JSONResponse(body: RepoValidationResponse())
    }

    static func repoDraft(_ body: RepoRequest, scope: CatalogScope, catalog: StorageCatalog) throws -> RepositoryDraft {
        try CatalogFieldLimits.check("name", body.name)
        try CatalogFieldLimits.check("workspaceId", body.workspaceId)
        guard !body.name.trimmingCharacters(in: .whitespaces).isEmpty else { throw APIError(.badRequest, "missing field name") }
        guard let type = StorageType(parsing: body.storageType) else {
            throw APIError(.badRequest, "unknown storageType \(body.storageType); expected S3, GCS, BLOB or AZURE")
        }
        let mode = try Self.mode(body.mode)
        let links = try Self.links(body.repoBuckets ?? body.repoUnits ?? [], scope: scope, catalog: catalog)
        return RepositoryDraft(name: body.name, storageType: type, mode: mode, workspaceId: body.workspaceId, buckets: links, walletAddress: body.walletAddress.nonEmpty)
    }

    /// The bucket links of a repository body: a reference is a bucket id, or else the display or
    /// provider name of a bucket the scope sees.
    static func links(_ items: [RepoBucketRequest], scope: CatalogScope, catalog: StorageCatalog) throws -> [RepoBucketLink] {
        let visible = catalog.buckets(scope)
        var links: [RepoBucketLink] = []
        for (index, item) in items.enumerated() {
            try CatalogFieldLimits.check("folder", item.folder)
            let reference = item.bucketId.nonEmpty ?? item.unitId.nonEmpty ?? item.bucket?.reference ?? item.unit?.reference
            guard let reference else { throw APIError(.badRequest, "repoBuckets[\(index)] needs a bucketId") }
            let id = visible.first { $0.id == reference }?.id ?? visible.first { $0.name == reference || $0.bucket == reference }?.id ?? reference
            links.append(RepoBucketLink(folder: item.folder ?? "", master: item.master ?? false, bucketId: id))
        }
        return links
    }

    /// `mode` of a repository body (default NORMAL), or 400.
    static func mode(_ text: String?) throws -> RepoMode {
        let modeText = text.nonEmpty ?? "NORMAL"
        guard let mode = RepoMode(rawValue: modeText.uppercased()) else { throw APIError(.badRequest, "mode must be NORMAL or MIRROR, not \(modeText)") }
        return mode
    }

    func registerRepositories(on router: some RouterMethods<CollectorRequestContext>) {
        // §9: the rules checked without saving; answers {success: true} or the rule's error_code.
        router.post("/repo/validate") { request, context -> JSONResponse<RepoValidationResponse> in
            try await validateRepository(request, context: context, pathID: nil)
        }
        router.post("/repo/:repoId/validate") { request, context -> JSONResponse<RepoValidationResponse> in
            try await validateRepository(request, context: context, pathID: try context.parameters.require("repoId"))
        }

        router.get("/repo") { request, context -> JSONResponse<RepoListResponse> in
            let scope = try Self.scope(context)
            let query = request.uri.queryParameters
            let repos = catalog.repositories(scope, workspaceId: query.get("workspaceId").nonEmpty, repoId: query.get("repoId").nonEmpty)
            return JSONResponse(body: RepoListResponse(repos: repos.map { repoDTO($0, scope: scope) }))
        }

        router.post("/repo") { request, context -> JSONResponse<RepoWriteResponse> in
            let scope = try Self.writeScope(context)
            let body = try await JSONRequest.decode(RepoRequest.self, from: request, context: context)
            let draft = try Self.repoDraft(body, scope: scope, catalog: catalog)
            let repo = try await catalog.createRepository(scope, draft)
            return JSONResponse(body: RepoWriteResponse(repoId: repo.id))
        }

        router.put("/repo/:repoId") { request, context -> JSONResponse<RepoWriteResponse> in
            let scope = try Self.writeScope(context)
            let id = try context.parameters.require("repoId")
            let body = try await JSONRequest.decode(RepoRequest.self, from: request, context: context)
            let draft = try Self.repoDraft(body, scope: scope, catalog: catalog)
            let repo = try await catalog.updateRepository(scope, id: id, draft)
            return JSONResponse(body: RepoWriteResponse(repoId: repo.id))
        }

        router.delete("/repo/:repoId") { _, context -> JSONResponse<ActionResponse> in
            let scope = try Self.writeScope(context)
            let id = try context.parameters.require("repoId")
            try await catalog.deleteRepository(scope, id: id)
            return JSONResponse(body: ActionResponse(message: "Repository deleted successfully"))
        }
    }

    // MARK: Repo API keys

    static func accessType(_ text: String) throws -> AccessType {
        guard let type = AccessType(rawValue: text.uppercased()) else { throw APIError(.badRequest, "accessType must be READ, WRITE or ADMIN, not \(text)") }
        return type
    }

    func registerKeys(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/repo/:repoId/apikey") { _, context -> JSONResponse<APIKeyListResponse> in
            let scope = try Self.scope(context)
            let repo = try context.parameters.require("repoId")
            let keys = try catalog.apiKeys(scope, repoId: repo)
            return JSONResponse(body: APIKeyListResponse(keys: keys.map(APIKeyDTO.init)))
        }

        router.post("/repo/:repoId/apikey") { request, context -> Response in
            let scope = try Self.writeScope(context)
            let repo = try context.parameters.require("repoId")
            let body = try await JSONRequest.decode(APIKeyRequest.self, from: request, context: context)
            try CatalogFieldLimits.check("name", body.name)
            guard !body.name.trimmingCharacters(in: .whitespaces).isEmpty else { throw APIError(.badRequest, "missing field name") }
            if let bodyRepo = body.repoId.nonEmpty, bodyRepo != repo { throw APIError(.badRequest, "repoId in the body differs from the path") }
            let type = try Self.accessType(body.accessType)
            let (key, secret) = try await catalog.createAPIKey(scope, repoId: repo, name: body.name, accessType: type)
            var response = try JSONResponse(body: APIKeyCreatedResponse(id: key.id, key: key.accessKeyID, secret: secret)).response(from: request, context: context)
            response.headers[.cacheControl] = "no-store"
            return response
        }

        router.put("/repo/:repoId/apikey/:apikeyId") { request, context -> JSONResponse<ActionResponse> in
            let scope = try Self.writeScope(context)
            let repo = try context.parameters.require("repoId")
            let keyID = try context.parameters.require("apikeyId")
            let body = try await JSONRequest.decode(APIKeyRequest.self, from: request, context: context)
            try CatalogFieldLimits.check("name", body.name)
            let type = try Self.accessType(body.accessType)
            try await catalog.updateAPIKey(scope, repoId: repo, keyId: keyID, name: body.name, accessType: type)
            return JSONResponse(body: ActionResponse(message: "API key updated successfully"))
        }

        router.delete("/repo/:repoId/apikey/:apikeyId") { _, context -> JSONResponse<ActionResponse> in
            let scope = try Self.writeScope(context)
            let repo = try context.parameters.require("repoId")
            let keyID = try context.parameters.require("apikeyId")
            try await catalog.deleteAPIKey(scope, repoId: repo, keyId: keyID)
            return JSONResponse(body: ActionResponse(message: "API key deleted successfully"))
        }
    }
}

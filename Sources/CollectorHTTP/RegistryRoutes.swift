import CollectorAuth
import CollectorModel
import FlashbackWire
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Registry

/// Organization keys, signed node registration and the node directory (flashback-api.md §6, §7.1, §7.3).
struct RegistryRoutes {
    let registry: NodeRegistry
    let authentication: CallerAuthentication

    /// `/register`, `/unregister` (signature) and `GET /node` (token optional).
    func registerPublic(on router: some RouterMethods<CollectorRequestContext>) {
        router.post("/register") { request, context -> JSONResponse<RegisterResponse> in
            let body = try await JSONRequest.decode(RegisterRequest.self, from: request, context: context)
            let message = SignedNodeMessage(ip: body.ip, region: body.region, timestamp: body.timestamp, signature: body.signature, organization: body.organization)
            try SignedMessageFields.check(ip: message.ip, region: message.region, signature: message.signature)
            if let services = body.nodeServices, !(0...0xFFFF).contains(services) {
                throw APIError(.badRequest, "nodeServices must be a bitmask between 0 and 65535")
            }
            let (node, token) = try await registry.register(NodeRegistration(
                message: message, provider: body.provider.nonEmpty, version: body.version, status: body.status,
                nodeServices: body.nodeServices, url: body.url.nonEmpty))
            context.logger.info("node registered", metadata: ["node": "\(node.id)", "organization": "\(node.organization ?? "public")"])
            return JSONResponse(body: RegisterResponse(message: "Node registered successfully", nodeId: node.id, nodeToken: token))
        }

        router.post("/unregister") { request, context -> JSONResponse<ActionResponse> in
            let body = try await JSONRequest.decode(UnregisterRequest.self, from: request, context: context)
            try SignedMessageFields.check(ip: body.ip, region: body.region ?? "-", signature: body.signature)
            try await registry.unregister(ip: body.ip, region: body.region.nonEmpty, timestamp: body.timestamp, signature: body.signature,
                                    organization: body.organization)
            return JSONResponse(body: ActionResponse(message: "Node unregistered successfully"))
        }

        router.get("/node") { request, context -> JSONResponse<NodeListResponse> in
            let services = try QueryParameter.integer(request, "nodeServices", in: 0...0xFFFF) ?? 0
            // Anonymous callers see public nodes; a valid token adds its organization's nodes.
            let organization = try await authentication.optionalUser(request)?.organization
            let nodes = registry.nodes(services: services, organization: organization).map { NodeInfoDTO($0, liveness: registry.liveness(of: $0)) }
            return JSONResponse(body: NodeListResponse(data: nodes, total: nodes.count))
        }
    }

    /// Organization-scoped routes; the router group must run ``TokenAuthMiddleware`` first.
    func registerAuthenticated(on router: some RouterMethods<CollectorRequestContext>) {
        router.post("/organization/:orgId/key") { request, context -> Response in
            let organization = try Self.administeredOrganization(context, resource: "keys")
            let (_, privatePEM) = try await registry.createKey(organization: organization)
            if Self.wantsPEM(request.headers) {
                return Response(
                    status: .ok,
                    headers: [.contentType: "application/x-pem-file", .contentDisposition: #"attachment; filename="private_key.pem""#,
                              .cacheControl: "no-store"],
                    body: ResponseBody(byteBuffer: ByteBuffer(string: privatePEM)))
            }
            // The official client JSON.parses every 2xx body: the PEM goes out as a JSON string.
            var response = try JSONResponse(body: privatePEM).response(from: request, context: context)
            response.headers[.cacheControl] = "no-store"
            return response
        }

        router.get("/organization/:orgId/key") { _, context -> JSONResponse<OrganizationKeyListResponse> in
            let organization = try Self.administeredOrganization(context, resource: "keys")
            let keys = registry.keys(organization: organization).map(OrganizationKeyDTO.init)
            return JSONResponse(body: OrganizationKeyListResponse(message: "Found \(keys.count) key(s)", data: keys))
        }

        router.delete("/organization/:orgId/key") { _, context -> JSONResponse<ActionResponse> in
            let organization = try Self.administeredOrganization(context, resource: "keys")
            let count = try await registry.deleteAllKeys(organization: organization)
            return JSONResponse(body: ActionResponse(message: "Successfully deleted \(count) organization key(s)"))
        }

        router.delete("/organization/:orgId/key/:idKey") { _, context -> JSONResponse<ActionResponse> in
            let organization = try Self.administeredOrganization(context, resource: "keys")
            let id = try context.parameters.require("idKey")
            try await registry.deleteKey(organization: organization, id: id)
            return JSONResponse(body: ActionResponse(message: "Organization key deleted successfully"))
        }

        router.get("/organization/:orgId/nodes") { _, context -> JSONResponse<NodeListResponse> in
            let identity = try context.requireIdentity()
            let organization = try context.parameters.require("orgId")
            guard identity.organization == organization else {
                throw APIError(.forbidden, "Access denied: you are not a member of this organization")
            }
            let nodes = registry.nodes(organization: organization).map { NodeInfoDTO($0, liveness: registry.liveness(of: $0)) }
            return JSONResponse(body: NodeListResponse(data: nodes, total: nodes.count))
        }

        router.delete("/organization/:orgId/node/:nodeId") { _, context -> JSONResponse<ActionResponse> in
            let organization = try Self.administeredOrganization(context, resource: "nodes")
            let node = try context.parameters.require("nodeId")
            try await registry.deleteNode(organization: organization, idOrIP: node)
            return JSONResponse(body: ActionResponse(message: "Node deleted successfully"))
        }

        router.post("/organization/:orgId/node/:nodeId/restore") { _, context -> JSONResponse<ActionResponse> in
            let organization = try Self.administeredOrganization(context, resource: "nodes")
            let node = try await registry.restoreNode(organization: organization, idOrIP: try context.parameters.require("nodeId"))
            return JSONResponse(body: ActionResponse(message: "Node \(node.id) restored; it registers again to get a new node token"))
        }
    }

    /// The `orgId` of the path, when the caller is an OWNER or ADMINISTRATOR of it; 403 otherwise.
    static func administeredOrganization(_ context: CollectorRequestContext, resource: String) throws -> String {
        let identity = try context.requireIdentity()
        let organization = try context.parameters.require("orgId")
        guard identity.organization == organization else {
            throw APIError(.forbidden, "Access denied: you can only manage \(resource) for your own organization")
        }
        guard identity.role.canAdministerOrganization else {
            throw APIError(.forbidden, "Insufficient permissions: only OWNER and ADMINISTRATOR roles can manage \(resource)")
        }
        return organization
    }

    /// Whether the caller asked for the raw PEM (`Accept: application/x-pem-file` or `text/plain`).
    static func wantsPEM(_ headers: HTTPFields) -> Bool {
        let accept = headers[values: .accept].joined(separator: ",").lowercased()
        return accept.contains("application/x-pem-file") || accept.contains("text/plain")
    }
}

import Catalog
import Hummingbird
import Registry

/// Cluster mode: before an authenticated read (GET, HEAD), the registry and catalog catch up
/// with the shared database (one small query each, a reload only when something changed), so a
/// client that changed something through one replica reads it back through any other. Changes
/// synchronize themselves; with the embedded store this does nothing.
struct ReadBarrierMiddleware: RouterMiddleware {
    typealias Context = CollectorRequestContext

    let registry: NodeRegistry
    let catalog: StorageCatalog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.method == .get || request.method == .head {
            async let registryFresh: Void = registry.synchronize()
            async let catalogFresh: Void = catalog.synchronize()
            _ = await (registryFresh, catalogFresh)
        }
        return try await next(request, context)
    }
}

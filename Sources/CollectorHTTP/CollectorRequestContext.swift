import CollectorModel
import Hummingbird
import Registry
import Synchronization

/// The request context of every collector route: Hummingbird's core storage plus the caller
/// established by ``TokenAuthMiddleware`` (absent on unauthenticated routes).
public struct CollectorRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The verified caller; set by ``TokenAuthMiddleware`` before any protected handler runs.
    public var identity: CallerIdentity?
    /// The bridge node established by ``NodeAuthMiddleware`` (node credential routes).
    public var node: BridgeNode?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = CoreRequestContextStorage(source: source)
        self.identity = nil
        self.node = nil
    }

    /// The body limit by default: 32 MiB (Hummingbird's own default, 2 MiB, is too small for
    /// line-protocol batches).
    public static let defaultBodyLimit = 32 << 20

    /// Largest accepted request body in bytes (`--max-body-size`); larger ones get 413.
    public static let bodyLimit = Atomic<Int>(defaultBodyLimit)

    public var maxUploadSize: Int { Self.bodyLimit.load(ordering: .relaxed) }

    /// The verified caller, or a 401 when the route was reached without one.
    public func requireIdentity() throws -> CallerIdentity {
        guard let identity else { throw APIError(.unauthorized, "missing bearer token") }
        return identity
    }
}

import Ingestion
import NIOCore
import ServiceLifecycle

/// Runs an HTTP application and reports a failure to bind as a ``ListenError``.
public struct HTTPListenerService<Base: Service>: Service {
    private let base: Base
    private let address: ListenAddress

    /// A `HTTPListenerService` from its parts.
    public init(_ base: Base, address: ListenAddress) {
        self.base = base
        self.address = address
    }

    public func run() async throws {
        do {
            try await base.run()
        } catch let error as IOError {
            throw ListenError(component: "HTTP", address: address, underlying: error)
        }
    }
}

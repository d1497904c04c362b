/// What a store shared by several collectors reports beyond its own failures.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The change breaks a rule a change already stored took (a unique name, one node per
    /// address); the service answers as it would have for its own rule.
    case conflict(String)
    /// The store cannot be reached now (down, failing over, timed out): the caller may retry
    /// later (HTTP 503 with `Retry-After`). Nothing was changed.
    case unavailable(String)

    public var description: String {
        switch self {
        case .conflict(let message): "conflict: \(message)"
        case .unavailable(let message): "store unavailable: \(message)"
        }
    }
}

/// How a service whose store several collectors share keeps its in-memory copy honest
/// (cluster mode): see `NodeRegistry.useSharedStore(_:)` and `StorageCatalog.useSharedStore(_:)`.
public struct SharedStoreHooks: Sendable {
    /// Returns once memory holds every change the store had committed when it was called
    /// (reloading if needed); a store that cannot be reached leaves memory as it is.
    public var barrier: @Sendable () async -> Void
    /// Runs when a credential was not found in memory; limits how often it asks the store.
    public var afterMiss: @Sendable () async -> Void

    /// A `SharedStoreHooks` from its parts.
    public init(barrier: @escaping @Sendable () async -> Void, afterMiss: @escaping @Sendable () async -> Void) {
        self.barrier = barrier
        self.afterMiss = afterMiss
    }
}

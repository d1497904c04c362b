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

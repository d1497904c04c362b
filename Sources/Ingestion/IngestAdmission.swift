import Synchronization

/// Bounds the bytes of ingest requests in flight, so that memory stays bounded under overload:
/// a request that would exceed the budget is answered 503 with `Retry-After` instead of queued.
///
/// A request is weighed by its `Content-Length` (or the body limit when it has none). One request
/// is always admitted when nothing else is in flight, so a single large body is never refused.
/// Thread-safety: lock-free.
public final class IngestAdmission: Sendable {
    /// The budget by default: 128 MiB.
    public static let defaultLimit = 128 << 20

    /// The budget in bytes (`--max-inflight-bytes`).
    public let limit: Int
    private let inFlight = Atomic<Int>(0)

    /// A budget of `limit` bytes in flight.
    public init(limit: Int = IngestAdmission.defaultLimit) {
        self.limit = limit
    }

    /// Reserves `weight` bytes; `false` when the budget is exhausted.
    public func tryAcquire(_ weight: Int) -> Bool {
        var current = inFlight.load(ordering: .relaxed)
        while true {
            if current > 0, current + weight > limit { return false }
            let (exchanged, original) = inFlight.compareExchange(expected: current, desired: current + weight, ordering: .acquiring)
            if exchanged { return true }
            current = original
        }
    }

    /// Returns what ``tryAcquire(_:)`` reserved.
    public func release(_ weight: Int) {
        inFlight.subtract(weight, ordering: .releasing)
    }

    /// Bytes reserved now.
    public var bytesInFlight: Int { inFlight.load(ordering: .relaxed) }
}

import Synchronization

/// Runs async critical sections one at a time, in arrival order: a lock that may be held across
/// `await` (a store write), which `Mutex` may not.
///
/// The registry and the catalog check their rules against memory, write the change to their
/// store and then apply it to memory; the gate keeps a second change of the same process from
/// checking against memory that a first one is about to change.
public final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    private let state = Mutex(State())

    /// An open gate.
    public init() {}

    /// Runs `body` once every earlier caller's body has finished.
    public func run<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async {
        let entered = state.withLock { state in
            guard state.busy else {
                state.busy = true
                return true
            }
            return false
        }
        if entered { return }
        await withCheckedContinuation { continuation in
            let admitted = state.withLock { state in
                guard state.busy else {
                    state.busy = true
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if admitted { continuation.resume() }
        }
    }

    private func leave() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.head < state.waiting.count else {
                state.busy = false
                state.waiting.removeAll(keepingCapacity: true)
                state.head = 0
                return nil
            }
            // The gate stays busy: it passes straight to the next waiter.
            let next = state.waiting[state.head]
            state.head += 1
            return next
        }
        next?.resume()
    }
}

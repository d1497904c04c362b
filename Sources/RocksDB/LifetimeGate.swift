import Synchronization

/// Counts the operations in flight on a ``Database`` so that ``Database/close()`` frees the C
/// handles only after every reader, writer, iterator and snapshot has finished with them.
///
/// The state word holds `inFlight << 1 | closedBit`. Entering is lock-free; it fails once the
/// closed bit is set. Unlike a pthread read-write lock, entering and leaving may happen on
/// different threads, which iterators that live across `await`s need.
final class LifetimeGate: Sendable {
    private let state = Atomic<Int>(0)

    /// Registers one user of the handles; `false` when the database is closed or closing.
    @inline(__always)
    func enter() -> Bool {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & 1 == 1 { return false }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current + 2, ordering: .acquiring)
            if exchanged { return true }
            current = original
        }
    }

    /// Releases one user registered by a successful ``enter()``.
    @inline(__always)
    func leave() {
        state.subtract(2, ordering: .releasing)
    }

    /// Sets the closed bit and waits until every user has left.
    /// - Returns: `false` if the gate was already closed (the caller must not free twice).
    func closeAndWait() -> Bool {
        var current = state.load(ordering: .relaxed)
        while true {
            if current & 1 == 1 { return false }
            let (exchanged, original) = state.compareExchange(
                expected: current, desired: current | 1, ordering: .acquiringAndReleasing)
            if exchanged { break }
            current = original
        }
        // Close is rare and users are short (a get, a write, an iterator's life), so a polite
        // spin with back-off is simpler and cheaper than a condition variable on every operation.
        var pause: UInt32 = 50
        while state.load(ordering: .acquiring) >> 1 != 0 {
            usleepCompat(pause)
            pause = min(pause * 2, 10_000)
        }
        return true
    }

    var isClosed: Bool { state.load(ordering: .relaxed) & 1 == 1 }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always)
private func usleepCompat(_ microseconds: UInt32) {
    _ = usleep(microseconds)
}

import Foundation

/// Runs blocking `work` (a child process to wait for, a socket to read) on a thread of its own
/// and awaits its result.
///
/// Swift's cooperative pool has one thread a core: two on the machines the suite runs on. A test
/// that blocks one of them in `waitUntilExit` or `recv` stops every other test's tasks from
/// running there; with a few such tests at once, the whole run stalled for most of a minute and a
/// flush service waiting for its next tick missed its test's time limit. Blocking work belongs on
/// threads that are not the pool's.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.name = "blocking test work"
        thread.start()
    }
}

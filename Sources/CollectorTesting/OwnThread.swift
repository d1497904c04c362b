import Foundation

/// Runs blocking `work` (a socket to read) on a thread of its own and awaits its result.
///
/// Swift's cooperative pool has one thread a core: two on the machines the suite runs on. A test
/// that blocks one of them in `recv` stops every other test's tasks from running there; with a
/// few such tests at once (and commands waited for the same way), the whole run stalled for most
/// of a minute and a flush service waiting for its next tick missed its test's time limit.
/// Child processes are not waited for here: ``runCommand(_:_:environment:)`` polls instead.
public func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try work() }) }
        thread.name = "blocking test work"
        thread.start()
    }
}

/// Serializes every child-process start of the test process.
private let launchLock = NSLock()

/// Starts `process`, one start at a time in the whole test process.
///
/// Foundation learns that a child exited when the child's end of a socket pair closes; while one
/// thread starts a child, that end is open in this process, and a child another thread starts at
/// the same moment could inherit it and delay the first one's exit notice for as long as it
/// runs. One start at a time, no start sees another's descriptors.
public func launch(_ process: Process) throws {
    try launchLock.withLock { try process.run() }
}

/// Polls `condition` until it holds or `timeout` passes: the wait on another process's state
/// (a real server's `/metrics`, a TSDB's answers), which no in-process condition can signal.
/// `false` on timeout.
public func eventually(timeout: Duration = .seconds(60), every interval: Duration = .milliseconds(50),
                       _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}

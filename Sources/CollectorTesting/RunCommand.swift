import Foundation

/// What a finished command printed.
public struct CommandResult: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs a command to completion, capturing its output in temporary files. Started on the
/// calling thread and awaited by polling (``BackgroundCommand/finish(timeout:)``), so that no
/// thread blocks: not one of the cooperative pool's (two here), nor a thread of its own
/// (Foundation's wait for a child started on a fresh thread hung the suite twice in seventeen
/// runs).
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> CommandResult {
    let command = try BackgroundCommand(executable, arguments, environment: environment)
    guard let result = await command.finish(timeout: .seconds(900)) else {
        throw CommandTimeout(command: ([executable] + arguments).joined(separator: " "))
    }
    return result
}

/// A command ``runCommand(_:_:environment:)`` waited for did not exit in time.
public struct CommandTimeout: Error, CustomStringConvertible {
    public let command: String
    public var description: String { "`\(command.prefix(300))` did not exit within 15 minutes" }
}

/// A command started in the background, its output captured in temporary files that can be read
/// while it runs.
///
/// Files rather than pipes: tests start long-lived children (collectors, moto) in parallel, and a
/// child spawned at the same moment can inherit a pipe's write end and keep it open, so a reader
/// waiting for end-of-file would wait forever. A file has no such end-of-file to wait for.
public final class BackgroundCommand: @unchecked Sendable {
    public let process = Process()
    private let outPath: String
    private let errPath: String

    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("cmd-\(UUID().uuidString)")
        outPath = base + ".out"
        errPath = base + ".err"
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil),
              let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
            throw CocoaError(.fileWriteUnknown)
        }
        defer {
            try? out.close()
            try? err.close()
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try launch(process)
    }

    deinit {
        if process.isRunning { process.terminate() }
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }

    /// What the command printed to standard output so far.
    public var standardOutput: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    /// Waits for the command to exit (polling, so that no thread blocks) and returns what it printed.
    public func finish(timeout: Duration = .seconds(300)) async -> CommandResult? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return result()
    }

    func result() -> CommandResult {
        CommandResult(
            status: process.terminationStatus, standardOutput: standardOutput,
            standardError: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }
}

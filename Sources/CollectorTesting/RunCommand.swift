import Foundation

/// What a finished command printed.
public struct CommandResult: Sendable {
    public let status: Int32
    public let standardOutput: String
    public let standardError: String
}

/// Runs a command to completion, capturing its output in temporary files.
///
/// Files rather than pipes: tests start long-lived children (collectors, moto) in parallel, and a
/// child spawned at the same moment can inherit a pipe's write end and keep it open, so a reader
/// waiting for end-of-file would wait forever. A file has no such end-of-file to wait for.
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let base = (NSTemporaryDirectory() as NSString).appendingPathComponent("cmd-\(UUID().uuidString)")
    let outPath = base + ".out"
    let errPath = base + ".err"
    guard FileManager.default.createFile(atPath: outPath, contents: nil),
          FileManager.default.createFile(atPath: errPath, contents: nil),
          let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath) else {
        throw CocoaError(.fileWriteUnknown)
    }
    defer {
        try? out.close()
        try? err.close()
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus,
        standardOutput: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
        standardError: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

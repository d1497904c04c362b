import CollectorStore
import CollectorTesting
import Foundation
import Testing

/// `flashback-collector backup` and `restore` with the real binary: a stopped collector's data
/// directory backed up twice (the second copies only new files), restored into a new directory
/// that a collector then serves with the same answers.
@Suite("backup and restore: the real binary")
struct BackupCommandTests {
    let directory = TemporaryDirectory(prefix: "backup-cli")
    let organization = "org-backup"

    /// Writes `minutes` minutes of three series through `collector`'s `/write`.
    func write(_ collector: CollectorProcess, minutes: Range<Int>, base: Int) async throws {
        let auth = try await collector.authorization(organization: organization)
        let body = minutes.flatMap { minute in
            (0..<3).map { "node_bucket,node=n\($0),bucket=b\($0) latency_ms=\(98 + minute % 7).\($0),upl_bytes=\(minute * 1_000 + $0)i \(base + minute * 60)" }
        }.joined(separator: "\n")
        let answer = try await collector.get("/write?precision=s", headers: auth, method: "POST", body: body)
        #expect(answer.status == 204, "\(answer.body)")
    }

    /// The minute rollups of `latency_ms` over the written period, as JSON.
    func rollups(_ collector: CollectorProcess, base: Int) async throws -> String {
        let auth = try await collector.authorization(organization: organization)
        let answer = try await collector.get("/api/v1/rollups?measurement=node_bucket&field=latency_ms&resolution=minute&start=\(base)&end=\(base + 7200)",
                                             headers: auth)
        #expect(answer.status == 200, "\(answer.body)")
        return answer.body
    }

    func stop(_ collector: CollectorProcess) async {
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }

    func run(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand(CollectorProcess.executableURL.path, arguments)
    }

    @Test func backupTwiceRestoreAndServeTheSameAnswers() async throws {
        let data = directory.appending("data")
        let folder = directory.appending("backups")
        let base = (Int(Date().timeIntervalSince1970) / 3600 - 2) * 3600

        var collector = try CollectorProcess(dataDirectory: data, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        try await write(collector, minutes: 0..<40, base: base)
        await stop(collector)
        let first = try await run(["backup", "--data-dir", data, "--to", folder])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("backup: 1/") && first.standardOutput.contains(" complete: "), "\(first.standardOutput)")

        collector = try CollectorProcess(dataDirectory: data, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        try await write(collector, minutes: 40..<80, base: base)
        let expected = try await rollups(collector, base: base)
        #expect(expected.contains("\"start\""))
        await stop(collector)
        // A checkpoint left by a backup that was killed goes; the new backup is unaffected.
        try FileManager.default.createDirectory(atPath: data + "/backup-checkpoint-4242", withIntermediateDirectories: true)
        let second = try await run(["backup", "--data-dir", data, "--to", folder])
        #expect(!FileManager.default.fileExists(atPath: data + "/backup-checkpoint-4242"))
        #expect(!FileManager.default.fileExists(atPath: data + "/backup-checkpoint"))
        #expect(second.status == 0, "\(second.standardError)")
        #expect(second.standardOutput.contains("already in the folder") && !second.standardOutput.contains("; 0 SST files ("), "\(second.standardOutput)")

        // The second backup shares SST files with the first and copied fewer bytes than it holds.
        let backups = try Backup.list(folder).complete
        #expect(backups.count == 2)
        let shared = Set(backups[0].files.map(\.stored)).intersection(backups[1].files.map(\.stored))
        #expect(!shared.isEmpty, "\(second.standardOutput)")

        let verified = try await run(["restore", "--from", folder, "--verify"])
        #expect(verified.status == 0 && verified.standardOutput.contains("is intact"), "\(verified.standardOutput)\(verified.standardError)")
        let restoredData = directory.appending("restored")
        let restored = try await run(["restore", "--from", folder, "--data-dir", restoredData])
        #expect(restored.status == 0 && restored.standardOutput.contains("restored backup \(backups[1].id)"), "\(restored.standardOutput)\(restored.standardError)")
        #expect(restored.standardOutput.contains("master.key") && restored.standardOutput.contains("jwt.secret"))
        let again = try await run(["restore", "--from", folder, "--data-dir", restoredData])
        #expect(again.status != 0 && again.standardError.contains("already exists"), "\(again.standardError)")

        // Served from the restored directory (its own jwt.secret and master.key came along).
        collector = try CollectorProcess(dataDirectory: restoredData, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        #expect(try await rollups(collector, base: base) == expected)
        await stop(collector)
    }
}

import CollectorStore
import CollectorTesting
import Foundation
import Synchronization
import Testing

/// `flashback-collector backup --server` of a running collector while line protocol keeps
/// arriving: the backups restore into a new data directory whose collector answers every stats
/// endpoint for the backed-up period as the source does; the second backup copies less than it
/// holds; a backup killed by SIGKILL is never restored as if complete.
@Suite("online backup: a running collector under load")
struct OnlineBackupTests {
    let directory = TemporaryDirectory(prefix: "online-backup")
    let fleet = "org-fleet"
    let loaded = "org-load"
    static let seriesPerBody = 100

    func run(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand(CollectorProcess.executableURL.path, arguments)
    }

    /// One body of the load: minute `index` of every load series.
    static func body(_ index: Int, base: Int) -> String {
        (0..<seriesPerBody).map { "load,host=h\($0) v=\(index * 7 + $0)i,ratio=\(Double(index % 50) / 8) \(base + index * 60)" }
            .joined(separator: "\n")
    }

    func loadRollups(_ collector: CollectorProcess, auth: [(String, String)], start: Int, end: Int, count: Bool) async throws -> String {
        let answer = try await collector.get("/api/v1/rollups?measurement=load&field=v&resolution=minute&start=\(start)&end=\(end)"
                                             + (count ? "&aggregate=count" : ""), headers: auth)
        #expect(answer.status == 200, "\(answer.body)")
        return answer.body
    }

    @Test func backupUnderLoadRestoresTheSameStats() async throws {
        let tokenFile = directory.appending("admin.token")
        try "online-backup-admin-token-0123456789\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let source = try CollectorProcess(dataDirectory: directory.appending("source"), logDirectory: directory.path,
                                          arguments: ["--admin-token-file", tokenFile, "--flush-interval-ms", "200"])
        defer { source.send(SIGKILL) }
        #expect(await source.waitFor(path: "/-/ready", status: 200))

        // Without the token, or with another, the admin endpoints refuse.
        #expect(try await source.get("/admin/checkpoint", method: "POST").status == 401)
        #expect(try await source.get("/admin/checkpoint", headers: [("Authorization", "Bearer online-backup-admin-token-01234567")], method: "POST").status == 401)

        // The fleet's period: 4 nodes × 3 buckets report for 5 s, then stop.
        let fleetAuth = try await source.authorization(organization: fleet)
        let key = try await source.get("/organization/\(fleet)/key", headers: fleetAuth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(key.status == 200, "\(key.body)")
        let keyFile = directory.appending("org.pem")
        try key.body.write(toFile: keyFile, atomically: true, encoding: .utf8)
        let simulated = try await run(ClusterStatsTests.simulateArguments(organization: fleet, keyFile: keyFile, seed: 21, duration: 5) + ["--target", source.baseURL])
        #expect(simulated.status == 0 && simulated.standardOutput.contains("errors 0"), "\(simulated.standardOutput)\(simulated.standardError)")

        // The load: another organization's line protocol, one minute of 100 series per request,
        // until told to stop. `acknowledged` counts the requests answered 204.
        let loadAuth = try await source.authorization(organization: loaded)
        let loadBase = (Int(Date().timeIntervalSince1970) / 3600 - 24) * 3600
        let state = LoadState()
        let load = Task { [source] in
            var index = 0
            while !state.stop.load(ordering: .relaxed), index < 1_400 {
                let answer = try await source.get("/write?precision=s", headers: loadAuth, method: "POST", body: Self.body(index, base: loadBase))
                guard answer.status == 204 else { throw Backup.Failure("load request \(index): \(answer.status) \(answer.body)") }
                index += 1
                state.acknowledged.store(index, ordering: .relaxed)
            }
            return index
        }
        defer { load.cancel() }
        func loadReached(_ count: Int) async throws -> Bool {
            try await eventually { state.acknowledged.load(ordering: .relaxed) >= count }
        }

        let folder = directory.appending("backups")
        let backup = ["backup", "--server", source.baseURL, "--admin-token-file", tokenFile, "--to", folder]
        #expect(try await loadReached(20))
        let first = try await run(backup)
        #expect(first.status == 0 && first.standardOutput.contains(" complete: "), "\(first.standardOutput)\(first.standardError)")
        // The offline form refuses a running collector's directory and names the online one.
        let offline = try await run(["backup", "--data-dir", source.dataDirectory, "--to", directory.appending("offline")])
        #expect(offline.status != 0 && offline.standardError.contains("--server URL --admin-token-file"), "\(offline.standardError)")
        #expect(try await loadReached(state.acknowledged.load(ordering: .relaxed) + 20))
        // Every request acknowledged before the second backup began is in it.
        let backedUp = state.acknowledged.load(ordering: .relaxed)
        let second = try await run(backup)
        #expect(second.status == 0, "\(second.standardOutput)\(second.standardError)")
        let backups = try Backup.list(folder).complete
        #expect(backups.count == 2)
        // The second copied only the files the first does not hold: less than it holds (the load
        // doubles the data between the two here, so not less than the first copied).
        let firstFiles = Set(backups[0].files.map(\.stored))
        let copied = backups[1].files.filter { !firstFiles.contains($0.stored) }.reduce(0) { $0 + $1.size }
        #expect(copied < backups[1].bytes,
                "the second backup copied \(copied) of its \(backups[1].bytes) bytes; the first \(backups[0].bytes)\n\(second.standardOutput)")
        #expect(second.standardOutput.contains("already in the folder") && !second.standardOutput.contains("; 0 SST files ("), "\(second.standardOutput)")
        // The collector's checkpoints are gone once copied.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: source.dataDirectory + "/checkpoints")) ?? []).isEmpty)

        // A third backup killed mid-copy: its folder has no manifest, and a restore of "the
        // newest" refuses it rather than restoring it or silently falling back.
        let killed = try BackgroundCommand(CollectorProcess.executableURL.path, backup)
        let copying = try await eventually(timeout: .seconds(60), every: .milliseconds(2)) { killed.standardOutput.contains("backup: 1/") || !killed.process.isRunning }
        #expect(copying)
        kill(killed.process.processIdentifier, SIGKILL)
        _ = await killed.finish()
        // Complete when the kill came after the manifest was written (its summary line may not
        // have been printed yet): then the folder holds three complete backups.
        let finished = try Backup.list(folder).complete.count == 3
        if !finished {
            let refused = try await run(["restore", "--from", folder, "--data-dir", directory.appending("never")])
            #expect(refused.status != 0 && refused.standardError.contains("incomplete"), "\(refused.standardOutput)\(refused.standardError)")
            #expect(!FileManager.default.fileExists(atPath: directory.appending("never")))
            #expect(try Backup.list(folder).incomplete.count == 1)
        }

        state.stop.store(true, ordering: .relaxed)
        let written = try await load.value
        #expect(written > backedUp)

        // The second backup, verified and restored, serves the same answers.
        let verified = try await run(["restore", "--from", folder, "--backup", backups[1].id, "--verify"])
        #expect(verified.status == 0 && verified.standardOutput.contains("is intact"), "\(verified.standardOutput)\(verified.standardError)")
        let restoredData = directory.appending("restored")
        let restored = try await run(["restore", "--from", folder, "--backup", backups[1].id, "--data-dir", restoredData])
        #expect(restored.status == 0, "\(restored.standardOutput)\(restored.standardError)")
        let copy = try CollectorProcess(dataDirectory: restoredData, logDirectory: directory.path, arguments: ["--flush-interval-ms", "200"])
        defer { copy.send(SIGKILL) }
        #expect(await copy.waitFor(path: "/-/ready", status: 200))

        try await ClusterStatsTests.expectSameStats(auth: fleetAuth, reference: source, answering: [copy])
        let backedUpEnd = loadBase + backedUp * 60
        let expected = try await loadRollups(source, auth: loadAuth, start: loadBase, end: backedUpEnd, count: false)
        #expect(expected.contains("\"rows\""))
        #expect(try await loadRollups(copy, auth: loadAuth, start: loadBase, end: backedUpEnd, count: false) == expected)
        let everything = loadBase + 1_400 * 60
        #expect(Self.count(try await loadRollups(source, auth: loadAuth, start: loadBase, end: everything, count: true)) == written * Self.seriesPerBody)
        let restoredCount = try #require(Self.count(try await loadRollups(copy, auth: loadAuth, start: loadBase, end: everything, count: true)))
        #expect(restoredCount >= backedUp * Self.seriesPerBody && restoredCount <= written * Self.seriesPerBody)
    }

    /// What the load task and the test share.
    final class LoadState: Sendable {
        /// Requests answered 204 so far.
        let acknowledged = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
    }

    static func count(_ json: String) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])?["count"] as? Int
    }
}

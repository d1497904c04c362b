import CollectorStore
import CollectorTesting
import Foundation
import Logging
import RocksDB
import Testing
import TimeSeries

/// A data directory written by an earlier release (Tests/Fixtures/format2-data.tar.gz: storage
/// format 2, series-major blocks of version 3, samples in SST files, in the WAL and in the
/// ingest log of a process killed with SIGKILL; see HOW.md in it) opened by this binary: every
/// minute rollup it answered is answered byte for byte, and its blocks have moved to the
/// day-major `blocks` family.
@Suite("format upgrade: a data directory of an earlier release")
struct FormatUpgradeTests {
    let directory = TemporaryDirectory(prefix: "format-upgrade")

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/format2-data.tar.gz").path

    @Test func format2DirectoryAnswersAsItsReleaseDid() async throws {
        let unpacked = try await runCommand("/usr/bin/env", ["tar", "xzf", Self.fixture, "-C", directory.path])
        #expect(unpacked.status == 0, "\(unpacked.standardError)")
        let base = try #require(Int(try String(contentsOfFile: directory.appending("base"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let data = directory.appending("data")
        // Retention far beyond the fixture's age, so that no compaction drops its blocks.
        let collector = try CollectorProcess(dataDirectory: data, logDirectory: directory.path,
                                             arguments: ["--retention-minute", "3153600000", "--retention-day", "3153600000"])
        defer { collector.send(SIGKILL) }
        #expect(await collector.waitFor(path: "/-/ready", status: 200), "\(collector.standardError)")
        let auth = try await collector.authorization(organization: "org-format2")
        for field in ["latency_ms", "upl_bytes", "ratio"] {
            let expected = try String(contentsOfFile: directory.appending("expected-\(field).json"), encoding: .utf8)
            let answer = try await collector.get("/api/v1/rollups?measurement=node_bucket&field=\(field)&resolution=minute&start=\(base - 3600)&end=\(base + 14_400)",
                                                 headers: auth)
            #expect(answer.status == 200)
            #expect(answer.body == expected, "\(field): the answer differs from the release's")
        }
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)

        // The old family is empty; the blocks are in `blocks`, day-major.
        let storage = try CollectorStorage.open(dataDirectory: data, extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        var old = 0
        try storage.database.scan(try storage.database.columnFamily("samples")) { _, _ in
            old += 1
            return true
        }
        var keys: [BlockKey] = []
        try storage.database.scan(try storage.database.columnFamily("blocks")) { key, _ in
            keys.append(try #require(BlockKey(bytes: key)))
            return true
        }
        #expect(old == 0)
        // 4 series × the four-hour spans of the hours the samples fall in (minutes 0–199 from the
        // hour `base`).
        let spans = Set((0..<200).map { BlockKey.spanStart(UInt32((base + $0 * 60) / 3600)) })
        #expect(keys.count == 4 * spans.count && Set(keys.map(\.series)).count == 4, "\(keys)")
        #expect(Set(keys.map(\.hour)) == spans)
    }
}

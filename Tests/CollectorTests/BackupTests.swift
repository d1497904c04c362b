import CollectorStore
import CollectorTesting
import Foundation
import Logging
import RocksDB
import Testing
import TimeSeries

@Suite("Backups: checkpoint copies, incremental, checked on restore")
struct BackupTests {
    let directory = TemporaryDirectory(prefix: "backup")
    static let hour: Int64 = 1_773_100_800 / 3600 * 3600

    /// A data directory with a time-series store, open.
    struct Collector {
        let storage: CollectorStorage
        let store: TimeSeriesStore

        init(_ path: String) throws {
            storage = try CollectorStorage.open(dataDirectory: path, extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
            var settings = TimeSeriesSettings()
            settings.maxSampleAge = 10 * 365 * 86_400
            store = try TimeSeriesStore(database: storage.database, settings: settings)
        }

        /// `minutes` minutes of 20 series, flushed into a new SST file.
        func write(minutes: Range<Int>) throws {
            for minute in minutes {
                let points = (0..<20).map { series in
                    SeriesPoint(organization: "org", measurement: "node_bucket", tags: [(key: "node", value: "n\(series)")],
                                fields: [(name: "latency_ms", value: Double(minute * 20 + series) / 10), (name: "upl_bytes", value: Double(series * 1_000 + minute))],
                                timestamp: (BackupTests.hour + Int64(minute) * 60) * 1_000_000_000)
                }
                _ = try store.write(points, now: Date(timeIntervalSince1970: TimeInterval(BackupTests.hour + 7200)), sync: false)
            }
            try store.flush()
            try storage.database.flush()
        }

        /// Every minute rollup of both fields of every series.
        func rollups() throws -> [String] {
            var out: [String] = []
            for (id, key) in store.index.series(organization: "org", measurement: "node_bucket") {
                for name in ["latency_ms", "upl_bytes"] {
                    let field = try #require(store.index.existingFieldID(name))
                    for row in try store.rollups(series: id, field: field, start: BackupTests.hour, end: BackupTests.hour + 7200, perDay: false) {
                        out.append("\(key.tags) \(name) \(row.start) \(row.rollup)")
                    }
                }
            }
            return out.sorted()
        }

        /// Backs the store up into `folder`.
        func backup(into folder: String, now: Date) throws -> Backup.Manifest {
            let checkpoint = storage.dataDirectory + "/checkpoint"
            try storage.checkpoint(at: checkpoint)
            defer { try? FileManager.default.removeItem(atPath: checkpoint) }
            return try Backup.create(checkpoint: checkpoint, identity: storage.identity,
                                     secrets: [(name: "master.key", path: storage.dataDirectory + "/master.key")], into: folder, now: now)
        }

        func close() { storage.close() }
    }

    @Test func aRestoredBackupAnswersLikeItsSourceAndTheSecondCopiesOnlyNewFiles() throws {
        let source = try Collector(directory.appending("data"))
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: directory.appending("data/master.key")))
        try source.write(minutes: 0..<30)
        let folder = directory.appending("backups")
        let first = try source.backup(into: folder, now: Date(timeIntervalSince1970: 1_800_000_000))
        let firstRollups = try source.rollups()
        #expect(firstRollups.count == 20 * 2 * 30)
        try source.write(minutes: 30..<60)
        var copied = 0
        let checkpoint = directory.appending("data/checkpoint")
        try source.storage.checkpoint(at: checkpoint)
        let second = try Backup.create(checkpoint: checkpoint, identity: source.storage.identity, secrets: [], into: folder,
                                       now: Date(timeIntervalSince1970: 1_800_000_060)) { state in
            copied = state.bytes - state.reusedBytes
        }
        try FileManager.default.removeItem(atPath: checkpoint)
        let secondRollups = try source.rollups()
        let sourceIdentity = source.storage.identity
        source.close()

        // The second backup shares the first one's SST files and copies less.
        let shared = Set(first.files.map(\.stored)).intersection(second.files.map(\.stored))
        #expect(!shared.isEmpty && shared.allSatisfy { $0.hasPrefix("sst/") })
        #expect(copied > 0 && copied < first.bytes, "copied \(copied) of \(second.bytes), first backup \(first.bytes)")
        #expect(try Backup.list(folder).complete.map(\.id) == [first.id, second.id])

        // Each restores to a store that answers as its source did then.
        for (manifest, expected) in [(first, firstRollups), (second, secondRollups)] {
            let target = directory.appending("restored-\(manifest.id)")
            _ = try Backup.restore(from: folder, id: manifest.id, to: target)
            let restored = try Collector(target)
            #expect(try restored.rollups() == expected)
            // A new database lineage: its SST names never collide with the source's in a folder.
            #expect(!restored.storage.identity.isEmpty && restored.storage.identity != sourceIdentity)
            restored.close()
        }
        // The secret came along, private.
        let key = directory.appending("restored-\(first.id)/master.key")
        #expect(FileManager.default.contents(atPath: key) == Data(repeating: 7, count: 32))
        #expect((try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int) == 0o600)
        #expect(!FileManager.default.fileExists(atPath: directory.appending("restored-\(second.id)/master.key")))
    }

    /// A backup killed after copying SST files but before its manifest: the next backup
    /// copies them again over the leftovers and restores.
    @Test func aBackupAfterAnInterruptedOneReplacesItsLeftovers() throws {
        let source = try Collector(directory.appending("data"))
        try source.write(minutes: 0..<10)
        let folder = directory.appending("backups")
        let interrupted = try source.backup(into: folder, now: Date(timeIntervalSince1970: 1_800_000_000))
        try FileManager.default.removeItem(atPath: folder + "/backups/\(interrupted.id)/manifest.json")
        let leftover = try #require(interrupted.files.first { $0.stored.hasPrefix("sst/") })
        try Data("partly copied".utf8).write(to: URL(fileURLWithPath: folder + "/" + leftover.stored))
        let next = try source.backup(into: folder, now: Date(timeIntervalSince1970: 1_800_000_060))
        let expected = try source.rollups()
        source.close()
        #expect(next.files.contains { $0.stored == leftover.stored })
        _ = try Backup.restore(from: folder, id: next.id, to: directory.appending("restored"))
        let restored = try Collector(directory.appending("restored"))
        #expect(try restored.rollups() == expected)
        restored.close()
    }

    @Test func aDamagedOrInterruptedBackupIsRefusedWithAClearMessage() throws {
        let source = try Collector(directory.appending("data"))
        try source.write(minutes: 0..<10)
        let folder = directory.appending("backups")
        let manifest = try source.backup(into: folder, now: Date(timeIntervalSince1970: 1_800_000_000))
        source.close()
        _ = try Backup.verify(folder)

        // A later backup interrupted before its manifest: never restored in its place.
        try FileManager.default.createDirectory(atPath: folder + "/backups/29991231T000000Z/rocksdb", withIntermediateDirectories: true)
        #expect(throws: Backup.Failure.self) { try Backup.restore(from: folder, to: directory.appending("r1")) }
        do {
            _ = try Backup.restore(from: folder, to: directory.appending("r1"))
        } catch let failure as Backup.Failure {
            #expect(failure.description.contains("incomplete") && failure.description.contains(manifest.id), "\(failure)")
        }
        #expect(throws: Backup.Failure.self) { try Backup.restore(from: folder, id: "29991231T000000Z", to: directory.appending("r1")) }
        #expect(!FileManager.default.fileExists(atPath: directory.appending("r1")))
        _ = try Backup.restore(from: folder, id: manifest.id, to: directory.appending("r2"))

        // One flipped byte in a stored SST file: verify and restore refuse, nothing is left.
        let sst = try #require(manifest.files.first { $0.stored.hasPrefix("sst/") })
        let path = folder + "/" + sst.stored
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: path))
        do {
            _ = try Backup.restore(from: folder, id: manifest.id, to: directory.appending("r3"))
            Issue.record("a damaged backup was restored")
        } catch let failure as Backup.Failure {
            #expect(failure.description.contains("damaged") && failure.description.contains(sst.stored), "\(failure)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appending("r3")))
        #expect(!FileManager.default.fileExists(atPath: directory.appending("r3.restoring")))
        #expect(throws: Backup.Failure.self) { try Backup.verify(folder, id: manifest.id) }
        // Not a backup folder at all; a data directory that exists already.
        #expect(throws: Backup.Failure.self) { try Backup.list(directory.appending("data")) }
        #expect(throws: Backup.Failure.self) { try Backup.restore(from: folder, id: manifest.id, to: directory.appending("r2")) }
    }

    /// The checkpoints of online backups: a consistent database and the secrets in one folder,
    /// backed up and restored like any checkpoint; removed one by one, all at start, and once a
    /// day old; ids that are not a checkpoint's never reach the filesystem.
    @Test func checkpointsOfOnlineBackups() throws {
        let collector = try Collector(directory.appending("data"))
        defer { collector.storage.close() }
        try collector.write(minutes: 0..<30)
        let expected = try collector.rollups()
        let keyFile = directory.appending("master.key")
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: keyFile))
        let checkpoints = Checkpoints(storage: collector.storage, secrets: [(name: "master.key", path: keyFile), (name: "jwt.secret", path: directory.appending("absent"))])
        let now = Date(timeIntervalSince1970: TimeInterval(Self.hour + 7200))
        let first = try checkpoints.create(now: now)
        #expect(first.path.hasPrefix("/") && first.path.hasSuffix("/checkpoints/" + first.id))
        #expect(first.identity == collector.storage.identity && first.secrets == ["master.key"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: first.path + "/secrets/master.key")) == Data(repeating: 7, count: 32))
        let mode = try FileManager.default.attributesOfItem(atPath: first.path + "/secrets/master.key")[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let second = try checkpoints.create(now: now)
        #expect(second.id != first.id && checkpoints.ids == [first.id, second.id].sorted())

        // Written after the checkpoint: not in it.
        try collector.write(minutes: 30..<40)
        let folder = directory.appending("backups")
        let manifest = try Backup.create(checkpoint: first.path + "/rocksdb", identity: first.identity,
                                         secrets: first.secrets.map { (name: $0, path: first.path + "/secrets/" + $0) }, into: folder, now: now)
        _ = try Backup.restore(from: folder, id: manifest.id, to: directory.appending("restored"))
        let restored = try Collector(directory.appending("restored"))
        #expect(try restored.rollups() == expected)
        restored.storage.close()

        for hostile in ["", "..", "../data", "/etc", "x", "-1", String(repeating: "1", count: 41), first.id + "/../.."] {
            #expect(!checkpoints.remove(hostile), "\(hostile)")
        }
        #expect(checkpoints.remove(first.id) && !checkpoints.remove(first.id))
        #expect(checkpoints.ids == [second.id])
        // A day later, a new checkpoint removes the one a dead backup left.
        try FileManager.default.setAttributes([.modificationDate: now.addingTimeInterval(-Checkpoints.maximumAge - 60)],
                                              ofItemAtPath: second.path)
        let third = try checkpoints.create(now: now)
        #expect(checkpoints.ids == [third.id])
        #expect(checkpoints.removeAll() == 1 && checkpoints.ids.isEmpty)
    }
}

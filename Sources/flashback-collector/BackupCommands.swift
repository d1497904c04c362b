import ArgumentParser
import CollectorStore
import Foundation
import Logging
import TimeSeries

/// `flashback-collector backup`: a consistent, incremental backup of a data directory whose
/// collector is stopped (a RocksDB checkpoint, then its files copied into the backup folder;
/// SST files an earlier backup holds are not copied again).
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a stopped collector's data directory into a backup folder (incremental).",
        discussion: "The folder keeps every backup; SST files shared with earlier backups are copied once. A backup holds master.key and jwt.secret unless --without-secrets is given: protect it like the data directory."
    )

    @Option(name: .long, help: "The data directory to back up (its collector stopped).")
    var dataDir: String

    @Option(name: .long, help: "The backup folder (created when missing).")
    var to: String

    @Option(name: .long, help: "The master key file, when it is not DATA_DIR/master.key.")
    var masterKeyFile: String?

    @Flag(name: .long, help: "Leave master.key and jwt.secret out (keep them elsewhere: secrets at rest cannot be opened without the key).")
    var withoutSecrets = false

    func run() throws {
        var logger = Logger(label: "flashback.backup")
        logger.logLevel = .warning
        let started = ContinuousClock.now
        let storage = try CollectorStorage.open(dataDirectory: dataDir, extraFamilies: TimeSeriesStore.columnFamilies(), logger: logger)
        defer { storage.close() }
        // Holding the database's lock, this is the only backup of the directory running: a
        // checkpoint left by one that was killed is removed (its hard links hold disk space).
        for leftover in (try? FileManager.default.contentsOfDirectory(atPath: dataDir)) ?? [] where leftover.hasPrefix("backup-checkpoint") {
            try? FileManager.default.removeItem(atPath: (dataDir as NSString).appendingPathComponent(leftover))
        }
        let checkpoint = (dataDir as NSString).appendingPathComponent("backup-checkpoint")
        try storage.checkpoint(at: checkpoint)
        defer { try? FileManager.default.removeItem(atPath: checkpoint) }
        let secrets = withoutSecrets ? [] : [
            (name: "master.key", path: masterKeyFile ?? (dataDir as NSString).appendingPathComponent("master.key")),
            (name: "jwt.secret", path: (dataDir as NSString).appendingPathComponent("jwt.secret")),
        ]
        var last = Backup.Progress()
        let manifest = try Backup.create(checkpoint: checkpoint, identity: storage.identity, secrets: secrets, into: to) { state in
            last = state
            print("backup: \(state.files)/\(state.totalFiles) files, \(Self.megabytes(state.bytes)) of \(Self.megabytes(state.totalBytes)) MB")
        }
        let elapsed = ContinuousClock.now - started
        print("backup \(manifest.id) complete: \(manifest.files.count) files, \(Self.megabytes(manifest.bytes)) MB; copied \(last.files - last.reusedFiles) files, "
              + "\(Self.megabytes(last.bytes - last.reusedBytes)) MB; \(last.reusedFiles) SST files (\(Self.megabytes(last.reusedBytes)) MB) already in the folder; "
              + String(format: "%.1f s", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
              + (withoutSecrets ? " (without secrets)" : ""))
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_000_000) }
}

/// `flashback-collector restore`: a backup into a new data directory, every file checked.
struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a new data directory (or --verify it), checking every file's SHA-256."
    )

    @Option(name: .long, help: "The backup folder.")
    var from: String

    @Option(name: .long, help: "The data directory to create (must not exist).")
    var dataDir: String?

    @Option(name: .long, help: "The backup to restore (default: the newest; refused when the newest is incomplete).")
    var backup: String?

    @Flag(name: .long, help: "Only check the backup's files against its manifest.")
    var verify = false

    func validate() throws {
        if !verify, dataDir == nil { throw ValidationError("--data-dir: where to restore (or --verify)") }
    }

    func run() throws {
        let report: (Backup.Progress) -> Void = { state in
            print("\(verify ? "verify" : "restore"): \(state.files)/\(state.totalFiles) files, \(BackupCommand.megabytes(state.bytes)) of \(BackupCommand.megabytes(state.totalBytes)) MB")
        }
        if verify {
            let manifest = try Backup.verify(from, id: backup, progress: report)
            print("backup \(manifest.id) is intact: \(manifest.files.count) files, \(BackupCommand.megabytes(manifest.bytes)) MB")
            return
        }
        guard let dataDir else { return }
        let manifest = try Backup.restore(from: from, id: backup, to: dataDir, progress: report)
        let secrets = manifest.files.filter { !$0.path.hasPrefix("rocksdb/") }.map(\.path)
        print("restored backup \(manifest.id) of \(manifest.created) into \(dataDir): \(manifest.files.count) files, \(BackupCommand.megabytes(manifest.bytes)) MB"
              + (secrets.isEmpty ? "; no secrets in it: start with --master-key-file and --jwt-secret of the original" : "; with \(secrets.joined(separator: ", "))"))
    }
}

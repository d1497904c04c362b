import ArgumentParser
import AsyncHTTPClient
import CollectorStore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import TimeSeries

/// `flashback-collector backup`: a consistent, incremental backup into a backup folder, of a
/// running collector (`--server`: it takes a checkpoint through `POST /admin/checkpoint`, this
/// copies it and deletes it; ingest goes on) or of a stopped one's data directory (`--data-dir`).
/// SST files an earlier backup in the folder holds are not copied again.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up a running collector (--server) or a stopped one's data directory (--data-dir) into a backup folder (incremental).",
        discussion: "The folder keeps every backup; SST files shared with earlier backups are copied once. A backup holds master.key and jwt.secret unless --without-secrets is given: protect it like the data directory. With --server, run it on the collector's host (it copies the checkpoint the collector writes under its data directory)."
    )

    @Option(name: .long, help: "The data directory of a stopped collector to back up.")
    var dataDir: String?

    @Option(name: .long, help: "The running collector's base URL (e.g. http://127.0.0.1:8080), started with --admin-token-file.")
    var server: String?

    @Option(name: .long, help: "File with the collector's admin token (its --admin-token-file), with --server.")
    var adminTokenFile: String?

    @Option(name: .long, help: "The backup folder (created when missing).")
    var to: String

    @Option(name: .long, help: "The master key file, when it is not DATA_DIR/master.key (with --data-dir).")
    var masterKeyFile: String?

    @Flag(name: .long, help: "Leave master.key and jwt.secret out (keep them elsewhere: secrets at rest cannot be opened without the key).")
    var withoutSecrets = false

    func validate() throws {
        switch (dataDir, server) {
        case (nil, nil): throw ValidationError("--server URL (a running collector) or --data-dir DIR (a stopped one): what to back up")
        case (.some, .some): throw ValidationError("--server or --data-dir, not both")
        case (nil, .some): if adminTokenFile == nil { throw ValidationError("--admin-token-file: the token of the collector's /admin endpoints") }
        case (.some, nil): break
        }
    }

    func run() async throws {
        let started = ContinuousClock.now
        let manifest: Backup.Manifest
        var last = Backup.Progress()
        let report: (Backup.Progress) -> Void = { state in
            last = state
            say("backup: \(state.files)/\(state.totalFiles) files, \(Self.megabytes(state.bytes)) of \(Self.megabytes(state.totalBytes)) MB")
        }
        if let server, let adminTokenFile {
            manifest = try await backUpRunning(server: server, tokenFile: adminTokenFile, progress: report)
        } else if let dataDir {
            manifest = try backUpStopped(dataDir, progress: report)
        } else {
            return
        }
        let elapsed = ContinuousClock.now - started
        say("backup \(manifest.id) complete: \(manifest.files.count) files, \(Self.megabytes(manifest.bytes)) MB; copied \(last.files - last.reusedFiles) files, "
              + "\(Self.megabytes(last.bytes - last.reusedBytes)) MB; \(last.reusedFiles) SST files (\(Self.megabytes(last.reusedBytes)) MB) already in the folder; "
              + String(format: "%.1f s", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
              + (withoutSecrets ? " (without secrets)" : ""))
    }

    private func backUpStopped(_ dataDir: String, progress: (Backup.Progress) -> Void) throws -> Backup.Manifest {
        var logger = Logger(label: "flashback.backup")
        logger.logLevel = .warning
        let storage: CollectorStorage
        do {
            storage = try CollectorStorage.open(dataDirectory: dataDir, extraFamilies: TimeSeriesStore.columnFamilies(), logger: logger)
        } catch let error as StorageError where error.isLocked {
            throw Backup.Failure(error.description + "; back up a running collector with --server URL --admin-token-file FILE")
        }
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
        return try Backup.create(checkpoint: checkpoint, identity: storage.identity, secrets: secrets, into: to, progress: progress)
    }

    private func backUpRunning(server: String, tokenFile: String, progress: (Backup.Progress) -> Void) async throws -> Backup.Manifest {
        guard let data = FileManager.default.contents(atPath: tokenFile) else { throw Backup.Failure("cannot read the admin token file \(tokenFile)") }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let admin = AdminClient(baseURL: server.hasSuffix("/") ? String(server.dropLast()) : server, token: token)
        defer { admin.shutdown() }
        let checkpoint = try await admin.createCheckpoint()
        say("backup: the collector wrote checkpoint \(checkpoint.id) in \(checkpoint.path)")
        let result: Result<Backup.Manifest, any Error>
        if FileManager.default.fileExists(atPath: checkpoint.path + "/rocksdb/CURRENT") {
            let secrets = withoutSecrets ? [] : checkpoint.secrets.map { (name: $0, path: checkpoint.path + "/secrets/" + $0) }
            result = Result { try Backup.create(checkpoint: checkpoint.path + "/rocksdb", identity: checkpoint.identity, secrets: secrets, into: to, progress: progress) }
        } else {
            result = .failure(Backup.Failure("the checkpoint is in \(checkpoint.path) on the collector's host, which this machine cannot read: run backup on that host"))
        }
        do {
            try await admin.deleteCheckpoint(checkpoint.id)
        } catch {
            say("backup: could not delete checkpoint \(checkpoint.id) (the collector removes it at its next start or after a day): \(error)")
        }
        return try result.get()
    }

    static func megabytes(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_000_000) }
}

/// The `/admin` endpoints of a running collector, as the backup command calls them.
struct AdminClient {
    struct Checkpoint: Decodable {
        var id: String
        var path: String
        var identity: String
        var secrets: [String]
    }

    private struct Failure: Decodable {
        var message: String?
    }

    let baseURL: String
    let token: String
    private let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                    configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    init(baseURL: String, token: String) {
        self.baseURL = baseURL
        self.token = token
    }

    func createCheckpoint() async throws -> Checkpoint {
        let body = try await call(.POST, "/admin/checkpoint")
        return try JSONDecoder().decode(Checkpoint.self, from: body)
    }

    func deleteCheckpoint(_ id: String) async throws {
        _ = try await call(.DELETE, "/admin/checkpoint/" + id)
    }

    func shutdown() { try? client.syncShutdown() }

    private func call(_ method: HTTPMethod, _ path: String) async throws -> Data {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(600))
        } catch {
            throw Backup.Failure("cannot reach the collector at \(baseURL): \(error)")
        }
        let body = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (try? JSONDecoder().decode(Failure.self, from: body))?.message ?? String(decoding: body.prefix(200), as: UTF8.self)
            let hint = response.status.code == 404 && method == .POST ? " (start the collector with --admin-token-file to allow online backups)" : ""
            throw Backup.Failure("\(method) \(baseURL)\(path): \(response.status.code) \(message)\(hint)")
        }
        return body
    }
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
            say("\(verify ? "verify" : "restore"): \(state.files)/\(state.totalFiles) files, \(BackupCommand.megabytes(state.bytes)) of \(BackupCommand.megabytes(state.totalBytes)) MB")
        }
        if verify {
            let manifest = try Backup.verify(from, id: backup, progress: report)
            say("backup \(manifest.id) is intact: \(manifest.files.count) files, \(BackupCommand.megabytes(manifest.bytes)) MB")
            return
        }
        guard let dataDir else { return }
        let manifest = try Backup.restore(from: from, id: backup, to: dataDir, progress: report)
        let secrets = manifest.files.filter { !$0.path.hasPrefix("rocksdb/") }.map(\.path)
        say("restored backup \(manifest.id) of \(manifest.created) into \(dataDir): \(manifest.files.count) files, \(BackupCommand.megabytes(manifest.bytes)) MB"
              + (secrets.isEmpty ? "; no secrets in it: start with --master-key-file and --jwt-secret of the original" : "; with \(secrets.joined(separator: ", "))"))
    }
}

/// One line on standard output, written at once (not buffered): progress reaches a log or a
/// pipe as it happens.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

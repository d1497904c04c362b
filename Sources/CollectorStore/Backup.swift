import Crypto
import Foundation

/// Backups of a collector's data directory in a backup folder that holds many of them and
/// shares the SST files they have in common, so a second backup copies only new files.
///
/// A backup is taken from a RocksDB checkpoint (a consistent copy of the database made while it
/// runs: ``CollectorStorage/checkpoint(at:)``) plus the secrets files. Layout of the folder:
///
/// ```
/// FORMAT                         "flashback-collector backup 1"
/// sst/<identity>-<name>          SST files, shared by every backup of that database (RocksDB
///                                never reuses an SST file's name within one database)
/// backups/<id>/rocksdb/…         the checkpoint's other files (MANIFEST, CURRENT, OPTIONS, WAL)
/// backups/<id>/secrets/…         master.key, jwt.secret (unless left out)
/// backups/<id>/manifest.json     every file with its size and SHA-256, written last
/// ```
///
/// The manifest is written to a temporary name, fsynced and renamed, after every file it lists:
/// a backup without one (interrupted, e.g. by kill -9) is never restored. Restore checks every
/// file's size and SHA-256 and builds the data directory under a temporary name, renamed into
/// place only when all of it checked out. A restored database gets a new RocksDB identity (its
/// `IDENTITY` file is not restored; RocksDB writes a new one at the first open): it numbers its
/// SST files on from the source's, so under the source's identity its files could take names
/// the source's backups already hold with other contents.
public enum Backup {
    public static let formatLine = "flashback-collector backup 1"

    /// One file of a backup.
    public struct File: Codable, Sendable, Equatable {
        /// Where it goes in a data directory (`rocksdb/000012.sst`, `master.key`).
        public var path: String
        /// Where it is in the backup folder.
        public var stored: String
        public var size: Int
        /// Lowercase hex.
        public var sha256: String
    }

    /// What `manifest.json` holds.
    public struct Manifest: Codable, Sendable {
        public var format: String
        public var id: String
        public var created: Date
        /// The database's RocksDB identity.
        public var identity: String
        public var files: [File]
        public var bytes: Int { files.reduce(0) { $0 + $1.size } }
    }

    /// Where a backup or a restore stands, after each file.
    public struct Progress: Sendable {
        public var files = 0
        public var totalFiles = 0
        public var bytes = 0
        public var totalBytes = 0
        /// Files (and their bytes) an earlier backup already held: not copied.
        public var reusedFiles = 0
        public var reusedBytes = 0

        /// Nothing done yet.
        public init() {}

        init(totalFiles: Int, totalBytes: Int) {
            self.totalFiles = totalFiles
            self.totalBytes = totalBytes
        }
    }

    /// A backup that cannot be taken, read or restored; the message says why.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    // MARK: Taking a backup

    /// Copies `checkpoint` (a RocksDB checkpoint of the database whose identity is `identity`)
    /// and `secrets` (name in the data directory → file) into `folder` as a new backup.
    public static func create(checkpoint: String, identity: String, secrets: [(name: String, path: String)], into folder: String,
                              now: Date = Date(), progress: (Progress) -> Void = { _ in }) throws -> Manifest {
        let fileManager = FileManager.default
        try prepare(folder)
        let id = backupID(now, existing: (try? fileManager.contentsOfDirectory(atPath: folder + "/backups")) ?? [])
        let backupDirectory = folder + "/backups/" + id
        try fileManager.createDirectory(atPath: backupDirectory + "/rocksdb", withIntermediateDirectories: true)
        let known = try knownFiles(in: folder)

        var sources: [(path: String, source: String, stored: String, shared: Bool)] = []
        let safeIdentity = identity.filter { $0.isLetter || $0.isNumber || $0 == "-" }
        for name in try fileManager.contentsOfDirectory(atPath: checkpoint).sorted() {
            let shared = name.hasSuffix(".sst") && !safeIdentity.isEmpty
            let stored = shared ? "sst/\(safeIdentity)-\(name)" : "backups/\(id)/rocksdb/\(name)"
            sources.append(("rocksdb/" + name, checkpoint + "/" + name, stored, shared))
        }
        for secret in secrets where fileManager.fileExists(atPath: secret.path) {
            sources.append((secret.name, secret.path, "backups/\(id)/secrets/\(secret.name)", false))
        }
        var state = Progress(totalFiles: sources.count, totalBytes: try sources.reduce(0) { $0 + (try size(of: $1.source)) })
        var files: [File] = []
        for source in sources {
            let bytes = try size(of: source.source)
            if source.shared, let earlier = known[source.stored], earlier.size == bytes,
               (try? size(of: folder + "/" + source.stored)) == bytes {
                files.append(File(path: source.path, stored: source.stored, size: bytes, sha256: earlier.sha256))
                state.reusedFiles += 1
                state.reusedBytes += bytes
            } else {
                if source.shared, let earlier = known[source.stored] {
                    throw Failure("\(folder)/\(source.stored) of backup folder's earlier backups has \(earlier.size) bytes where the database's file has \(bytes): back up into a new folder")
                }
                // Not listed by any complete backup: a leftover of an interrupted one, replaced.
                try? fileManager.removeItem(atPath: folder + "/" + source.stored)
                let digest = try copy(source.source, to: folder + "/" + source.stored, private: !source.path.hasPrefix("rocksdb/"))
                files.append(File(path: source.path, stored: source.stored, size: bytes, sha256: digest))
            }
            state.files += 1
            state.bytes += bytes
            progress(state)
        }
        let manifest = Manifest(format: formatLine, id: id, created: now, identity: identity, files: files)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        try writeDurably(try encoder.encode(manifest), to: backupDirectory + "/manifest.json")
        return manifest
    }

    // MARK: Reading backups

    /// The backups in `folder`, oldest first: complete ones with their manifest, and the ids of
    /// those without one (interrupted).
    public static func list(_ folder: String) throws -> (complete: [Manifest], incomplete: [String]) {
        guard (try? String(contentsOfFile: folder + "/FORMAT", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == formatLine else {
            throw Failure("\(folder) is not a flashback-collector backup folder (no FORMAT file saying \"\(formatLine)\")")
        }
        var complete: [Manifest] = []
        var incomplete: [String] = []
        for id in ((try? FileManager.default.contentsOfDirectory(atPath: folder + "/backups")) ?? []).sorted() {
            if let manifest = try? manifest(folder, id) {
                complete.append(manifest)
            } else {
                incomplete.append(id)
            }
        }
        return (complete, incomplete)
    }

    static func manifest(_ folder: String, _ id: String) throws -> Manifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/backups/" + id + "/manifest.json"))
        let manifest = try decoder.decode(Manifest.self, from: data)
        guard manifest.format == formatLine, manifest.id == id else { throw Failure("backup \(id): manifest of another format or backup") }
        return manifest
    }

    /// Checks every file of backup `id` (the newest when `nil`): size and SHA-256.
    public static func verify(_ folder: String, id: String? = nil, progress: (Progress) -> Void = { _ in }) throws -> Manifest {
        let manifest = try choose(folder, id: id)
        var state = Progress(totalFiles: manifest.files.count, totalBytes: manifest.bytes)
        for file in manifest.files {
            let digest = try hash(folder + "/" + file.stored, expectedSize: file.size, in: manifest)
            guard digest == file.sha256 else { throw damaged(manifest, file, "its SHA-256 differs from the manifest's") }
            state.files += 1
            state.bytes += file.size
            progress(state)
        }
        return manifest
    }

    /// The complete backup `id`, or the newest one; refuses when the newest backup is incomplete
    /// and no id was given (an interrupted backup never stands in silently for a complete one).
    static func choose(_ folder: String, id: String?) throws -> Manifest {
        let (complete, incomplete) = try list(folder)
        if let id {
            if let manifest = complete.first(where: { $0.id == id }) { return manifest }
            if incomplete.contains(id) { throw Failure("backup \(id) is incomplete (it has no manifest: it was interrupted); it cannot be restored") }
            throw Failure("there is no backup \(id) in \(folder); complete backups: \(complete.map(\.id).joined(separator: ", "))")
        }
        guard let newest = complete.last else {
            throw Failure("\(folder) holds no complete backup" + (incomplete.isEmpty ? "" : " (incomplete: \(incomplete.joined(separator: ", ")))"))
        }
        if let interrupted = incomplete.last, interrupted > newest.id {
            throw Failure("the newest backup in \(folder), \(interrupted), is incomplete (interrupted); pass --backup \(newest.id) to restore the newest complete one")
        }
        return newest
    }

    // MARK: Restoring

    /// Restores backup `id` (the newest when `nil`) into `dataDirectory`, which must not exist:
    /// built as `dataDirectory.restoring`, every file checked, then renamed into place.
    public static func restore(from folder: String, id: String? = nil, to dataDirectory: String,
                               progress: (Progress) -> Void = { _ in }) throws -> Manifest {
        let fileManager = FileManager.default
        guard !fileManager.fileExists(atPath: dataDirectory) else {
            throw Failure("\(dataDirectory) already exists; restore into a new data directory")
        }
        let manifest = try choose(folder, id: id)
        let staging = dataDirectory + ".restoring"
        try? fileManager.removeItem(atPath: staging)
        try fileManager.createDirectory(atPath: staging + "/rocksdb", withIntermediateDirectories: true)
        let files = manifest.files.filter { $0.path != "rocksdb/IDENTITY" }
        var state = Progress(totalFiles: files.count, totalBytes: files.reduce(0) { $0 + $1.size })
        do {
            for file in files {
                let components = file.path.split(separator: "/")
                guard !components.isEmpty, !components.contains(".."), !file.path.hasPrefix("/") else {
                    throw damaged(manifest, file, "its path leaves the data directory")
                }
                let source = folder + "/" + file.stored
                guard (try? size(of: source)) == file.size else { throw damaged(manifest, file, "it is missing or has another size") }
                let digest = try copy(source, to: staging + "/" + file.path, private: components.count == 1)
                guard digest == file.sha256 else { throw damaged(manifest, file, "its SHA-256 differs from the manifest's") }
                state.files += 1
                state.bytes += file.size
                progress(state)
            }
            try fileManager.moveItem(atPath: staging, toPath: dataDirectory)
        } catch {
            try? fileManager.removeItem(atPath: staging)
            throw error
        }
        return manifest
    }

    // MARK: Files

    private static func damaged(_ manifest: Manifest, _ file: File, _ reason: String) -> Failure {
        Failure("backup \(manifest.id) is damaged: \(file.stored) (\(file.path)) \(reason); restore another backup")
    }

    private static func prepare(_ folder: String) throws {
        let fileManager = FileManager.default
        let format = folder + "/FORMAT"
        if fileManager.fileExists(atPath: format) {
            _ = try list(folder)
        } else {
            if fileManager.fileExists(atPath: folder), !((try? fileManager.contentsOfDirectory(atPath: folder)) ?? []).isEmpty {
                throw Failure("\(folder) is neither empty nor a flashback-collector backup folder")
            }
            try fileManager.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try writeDurably(Data((formatLine + "\n").utf8), to: format)
        }
        try fileManager.createDirectory(atPath: folder + "/sst", withIntermediateDirectories: true)
        try fileManager.createDirectory(atPath: folder + "/backups", withIntermediateDirectories: true)
    }

    /// The shared files complete backups list, by stored path.
    private static func knownFiles(in folder: String) throws -> [String: File] {
        var known: [String: File] = [:]
        for manifest in try list(folder).complete {
            for file in manifest.files where file.stored.hasPrefix("sst/") { known[file.stored] = file }
        }
        return known
    }

    /// `date` as `20261204T072257Z` (UTC): backup and checkpoint ids, which sort by time.
    static func compactTimestamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    private static func backupID(_ date: Date, existing: [String]) -> String {
        let base = compactTimestamp(date)
        var id = base
        var suffix = 1
        while existing.contains(id) {
            suffix += 1
            id = "\(base)-\(suffix)"
        }
        return id
    }

    private static func size(of path: String) throws -> Int {
        guard let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int else {
            throw Failure("cannot read the size of \(path)")
        }
        return size
    }

    /// Copies `source` to `target` (creating its folder), fsyncs it, and returns the SHA-256 of
    /// what was written. `private`: mode 0600 (secrets).
    private static func copy(_ source: String, to target: String, private: Bool) throws -> String {
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let temporary = target + ".partial"
        guard fileManager.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: `private` ? 0o600 : 0o644]) else {
            throw Failure("cannot create \(temporary)")
        }
        guard let input = FileHandle(forReadingAtPath: source), let output = FileHandle(forWritingAtPath: temporary) else {
            throw Failure("cannot copy \(source) to \(target)")
        }
        defer {
            try? input.close()
            try? output.close()
        }
        var hasher = SHA256()
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            try output.write(contentsOf: chunk)
        }
        try output.synchronize()
        try fileManager.moveItem(atPath: temporary, toPath: target)
        return hex(hasher.finalize())
    }

    private static func hash(_ path: String, expectedSize: Int, in manifest: Manifest) throws -> String {
        guard (try? size(of: path)) == expectedSize, let input = FileHandle(forReadingAtPath: path) else {
            throw Failure("backup \(manifest.id) is damaged: \(path) is missing or has another size; restore another backup")
        }
        defer { try? input.close() }
        var hasher = SHA256()
        while let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hex(hasher.finalize())
    }

    private static func writeDurably(_ data: Data, to path: String) throws {
        let temporary = path + ".partial"
        try data.write(to: URL(fileURLWithPath: temporary))
        if let handle = FileHandle(forUpdatingAtPath: temporary) {
            try handle.synchronize()
            try handle.close()
        }
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: temporary, toPath: path)
    }

    private static func hex(_ digest: SHA256.Digest) -> String {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}

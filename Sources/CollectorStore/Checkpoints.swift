import Foundation
import Synchronization

/// Checkpoints of a running collector for online backups (`POST /admin/checkpoint`), in
/// `DATA_DIR/checkpoints/<id>/`:
///
/// ```
/// rocksdb/…            a RocksDB checkpoint: consistent, SST files hard-linked (no copy)
/// secrets/master.key   copies of the secrets files (mode 0600), so that the backup tool
/// secrets/jwt.secret   finds everything it copies in one folder
/// ```
///
/// A checkpoint holds disk space (its hard links keep SST files that compactions have since
/// replaced), so the backup tool deletes it when done. Those of a backup tool that died are
/// removed at the collector's next start and, while it runs, once older than ``maximumAge``.
///
/// Thread-safety: `Sendable`; creations and removals are serialized.
public final class Checkpoints: Sendable {
    /// A checkpoint as `POST /admin/checkpoint` describes it.
    public struct Checkpoint: Sendable, Equatable {
        public var id: String
        /// The checkpoint's folder (on the collector's host).
        public var path: String
        /// The RocksDB identity of the database it copies.
        public var identity: String
        /// Names of the secrets files under `path/secrets`.
        public var secrets: [String]
        public var created: Date
    }

    /// Age after which a checkpoint still present is taken for the leftover of a dead backup.
    public static let maximumAge: TimeInterval = 24 * 3600

    private let storage: CollectorStorage
    private let directory: String
    private let secretFiles: [(name: String, path: String)]
    private let lock = Mutex(0)

    /// - Parameter secrets: name in a backup → file (`master.key` → `--master-key-file`).
    public init(storage: CollectorStorage, secrets: [(name: String, path: String)]) {
        self.storage = storage
        // Absolute: the path is handed to a backup tool that runs in another working directory.
        self.directory = URL(fileURLWithPath: storage.dataDirectory).appendingPathComponent("checkpoints").standardizedFileURL.path
        self.secretFiles = secrets
    }

    /// Removes every checkpoint (at start: none can be in use yet). Returns how many.
    @discardableResult
    public func removeAll() -> Int {
        lock.withLock { _ in
            let ids = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for id in ids { try? FileManager.default.removeItem(atPath: directory + "/" + id) }
            return ids.count
        }
    }

    /// A new checkpoint. Checkpoints older than ``maximumAge`` are removed first.
    public func create(now: Date = Date()) throws -> Checkpoint {
        try lock.withLock { sequence in
            let fileManager = FileManager.default
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
            for id in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] {
                let modified = (try? fileManager.attributesOfItem(atPath: directory + "/" + id)[.modificationDate]) as? Date
                if let modified, now.timeIntervalSince(modified) > Self.maximumAge {
                    try? fileManager.removeItem(atPath: directory + "/" + id)
                }
            }
            var id: String
            repeat {
                sequence += 1
                id = Backup.compactTimestamp(now) + "-\(sequence)"
            } while fileManager.fileExists(atPath: directory + "/" + id)
            let folder = directory + "/" + id
            try fileManager.createDirectory(atPath: folder + "/secrets", withIntermediateDirectories: true)
            do {
                try storage.checkpoint(at: folder + "/rocksdb")
                var names: [String] = []
                for secret in secretFiles where fileManager.fileExists(atPath: secret.path) {
                    let target = folder + "/secrets/" + secret.name
                    let bytes = try Data(contentsOf: URL(fileURLWithPath: secret.path))
                    guard fileManager.createFile(atPath: target, contents: bytes, attributes: [.posixPermissions: 0o600]) else {
                        throw StorageError(description: "cannot write \(target)")
                    }
                    names.append(secret.name)
                }
                return Checkpoint(id: id, path: folder, identity: storage.identity, secrets: names, created: now)
            } catch {
                try? fileManager.removeItem(atPath: folder)
                throw error
            }
        }
    }

    /// Removes checkpoint `id`; `false` when there is none (or `id` is not a checkpoint's).
    public func remove(_ id: String) -> Bool {
        guard Self.isValidID(id) else { return false }
        return lock.withLock { _ in
            let folder = directory + "/" + id
            guard FileManager.default.fileExists(atPath: folder) else { return false }
            return (try? FileManager.default.removeItem(atPath: folder)) != nil
        }
    }

    /// The checkpoints present, by id.
    public var ids: [String] {
        lock.withLock { _ in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() }
    }

    /// Whether `id` has a checkpoint id's form (`20261204T072257Z-3`): nothing else reaches the
    /// filesystem.
    public static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 40 && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x54 || $0 == 0x5A || $0 == 0x2D }
            && id.utf8.first != 0x2D
    }
}

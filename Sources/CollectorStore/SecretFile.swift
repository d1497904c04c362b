import Crypto
import Foundation

/// A file holding random key material as base64 text (a raw file of exactly the expected size is
/// accepted too), created with mode 0600 when absent. Used for the master key and the JWT secret.
public enum SecretFile {
    /// Reads the secret at `path`, creating it from `byteCount` random bytes when absent.
    /// - Returns: the secret and whether it was created now.
    public static func loadOrCreate(at path: String, byteCount: Int) throws -> (bytes: [UInt8], created: Bool) {
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            return (try load(at: path, byteCount: byteCount), false)
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty, !manager.fileExists(atPath: directory) {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let secret = SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8)).withUnsafeBytes { Array($0) }
        let text = Array((Data(secret).base64EncodedString() + "\n").utf8)
        // O_EXCL with mode 0600: the file is never readable by others, not even for an instant,
        // and two processes starting at once cannot both create it.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { return (try load(at: path, byteCount: byteCount), false) }
            throw SecretFileError(description: "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == text.count, synced == 0 else {
            throw SecretFileError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return (secret, true)
    }

    /// Reads the secret at `path`.
    /// - Throws: ``SecretFileError`` when unreadable or not `byteCount` bytes (raw or base64).
    public static func load(at path: String, byteCount: Int) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SecretFileError(description: "cannot read \(path)")
        }
        if data.count == byteCount { return Array(data) }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let decoded = Data(base64Encoded: text), decoded.count == byteCount else {
            throw SecretFileError(description: "\(path) must hold \(byteCount) bytes, raw or as base64 text")
        }
        return Array(decoded)
    }
}

/// A problem with a secret file, phrased for an operator.
public struct SecretFileError: Error, CustomStringConvertible, Sendable {
    public let description: String

    /// A `SecretFileError` from its parts.
    public init(description: String) {
        self.description = description
    }
}

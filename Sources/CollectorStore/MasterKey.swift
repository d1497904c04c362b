import Crypto

/// The 256-bit key that seals secrets at rest (bucket credentials, repo API key secrets).
///
/// Kept in `--master-key-file` (default `DATA_DIR/master.key`) as base64 text; created from 32
/// random bytes with mode 0600 on first start. Losing the file makes sealed secrets unreadable.
public struct MasterKey: Sendable {
    /// The AES-256 key.
    public let key: SymmetricKey

    /// A `MasterKey` from its parts.
    public init(key: SymmetricKey) {
        precondition(key.bitCount == 256, "a master key is 256 bits")
        self.key = key
    }

    /// Reads the key at `path`, creating it when absent.
    public static func loadOrCreate(at path: String) throws -> (key: MasterKey, created: Bool) {
        let (bytes, created) = try SecretFile.loadOrCreate(at: path, byteCount: 32)
        return (MasterKey(key: SymmetricKey(data: bytes)), created)
    }
}

import Crypto
import Foundation

/// Seals and opens secrets with AES-256-GCM under the ``MasterKey``.
///
/// Sealed form: `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`. The leading byte is the format
/// version. `context` is authenticated but not stored (e.g. `"bucket:<id>"`), so a sealed secret
/// copied onto another record fails to open instead of leaking.
public struct SecretBox: Sendable {
    private static let version: UInt8 = 1
    private let key: SymmetricKey

    /// A `SecretBox` from its parts.
    public init(masterKey: MasterKey) {
        self.key = masterKey.key
    }

    /// Encrypts `plaintext`, bound to `context`.
    public func seal(_ plaintext: some DataProtocol, context: String) throws -> [UInt8] {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: Array(context.utf8))
        guard let combined = box.combined else {
            preconditionFailure("AES.GCM with the default 12-byte nonce always has a combined form")
        }
        return [SecretBox.version] + Array(combined)
    }

    /// Decrypts a sealed secret.
    /// - Throws: ``SecretBoxError/tampered`` for a wrong key, a wrong context or altered bytes.
    public func open(_ sealed: some Collection<UInt8>, context: String) throws(SecretBoxError) -> [UInt8] {
        guard sealed.count >= 1 + 12 + 16, sealed.first == SecretBox.version else { throw .malformed }
        do {
            let box = try AES.GCM.SealedBox(combined: Data(sealed.dropFirst()))
            return Array(try AES.GCM.open(box, using: key, authenticating: Array(context.utf8)))
        } catch {
            // On Linux a failed tag check surfaces as an underlying BoringSSL error rather than
            // `.authenticationFailure`; either way the secret cannot be trusted.
            throw .tampered
        }
    }
}

/// Why a sealed secret could not be opened.
public enum SecretBoxError: Error, Equatable, Sendable {
    /// Too short or of an unknown format version.
    case malformed
    /// Authentication failed: wrong key, wrong context or altered bytes.
    case tampered
}

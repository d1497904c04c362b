import Crypto
import Foundation
import _CryptoExtras

/// The `.env` files an installing bridge node downloads through `POST /secrets`
/// (flashback-api.md Appendix A), one per service (`s3`, `gcs`, `blob`), from the operator's
/// directory (`--node-env-dir`): `DIR/<organization>/<service>.env` when that organization has
/// its own, else `DIR/<service>.env`. A service without a file is left out of the answer.
///
/// The files may name a few values the collector knows and fills in (see ``Variables``); any
/// other text, `${…}` included, is passed on unchanged. Contents are never logged.
public struct NodeEnvironmentSource: Sendable {
    /// The services the installer asks for, in its order.
    public static let services = ["s3", "gcs", "blob"]
    /// The largest env file served, so that a misplaced file cannot become a huge answer.
    public static let maxFileBytes = 256 * 1024

    /// What the collector fills into env files. Each is written in a file as `${NAME}`.
    public struct Variables: Sendable {
        /// The collector's public base URL (`--public-url`), e.g. `https://collector.example.com`.
        public var publicURL: String
        /// `${FLASHBACK_UDP_ADDRESS}`: where nodes send line-protocol datagrams (`host:port`).
        public var udpAddress: String?

        public init(publicURL: String, udpAddress: String? = nil) {
            self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
            self.udpAddress = udpAddress
        }

        /// The substitutions for one node.
        func values(organization: String, region: String) -> [(name: String, value: String)] {
            var values = [
                ("FLASHBACK_PUBLIC_URL", publicURL),
                ("FLASHBACK_REGISTER_URL", publicURL + "/register"),
                ("FLASHBACK_STATUS_URL", publicURL + "/status"),
                ("FLASHBACK_REPORT_URL", publicURL + "/stats/report"),
                ("FLASHBACK_WRITE_URL", publicURL + "/write"),
                ("FLASHBACK_ORG_ID", organization),
                ("FLASHBACK_REGION", region),
            ]
            if let udpAddress { values.append(("FLASHBACK_UDP_ADDRESS", udpAddress)) }
            return values.map { (name: $0.0, value: $0.1) }
        }
    }

    /// The directory of env files.
    public let directory: String
    public let variables: Variables

    /// Env files from `directory`, filled in with `variables`.
    public init(directory: String, variables: Variables) {
        self.directory = directory
        self.variables = variables
    }

    /// Whether `organization` may name a directory: letters, digits, `.`, `_` and `-`, not `.`
    /// or `..`, so that an organization id can never point outside `directory`.
    static func isSafeDirectoryName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 128
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }

    /// The filled-in env file of each service that has one, for a node of `organization` in
    /// `region` (`organization` is `""` for public nodes).
    public func files(organization: String, region: String) throws -> [(service: String, content: [UInt8])] {
        let values = variables.values(organization: organization, region: region)
        var found: [(service: String, content: [UInt8])] = []
        for service in Self.services {
            var candidates: [String] = []
            if Self.isSafeDirectoryName(organization) {
                candidates.append((directory as NSString).appendingPathComponent("\(organization)/\(service).env"))
            }
            candidates.append((directory as NSString).appendingPathComponent("\(service).env"))
            guard let path = candidates.first(where: { FileManager.default.isReadableFile(atPath: $0) }) else { continue }
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            guard (attributes[.size] as? Int ?? 0) <= Self.maxFileBytes else {
                throw NodeEnvironmentError.fileTooLarge(service: service, limit: Self.maxFileBytes)
            }
            var text = try String(contentsOfFile: path, encoding: .utf8)
            for (name, value) in values { text = text.replacingOccurrences(of: "${\(name)}", with: value) }
            found.append((service, Array(text.utf8)))
        }
        return found
    }
}

/// Why the env files could not be served; phrased for the operator's log and the caller.
public enum NodeEnvironmentError: Error, Equatable, CustomStringConvertible {
    case fileTooLarge(service: String, limit: Int)
    /// The public key that verified the request cannot encrypt (not RSA, or too small).
    case unusableKey

    public var description: String {
        switch self {
        case .fileTooLarge(let service, let limit): return "the \(service) env file is larger than \(limit) bytes"
        case .unusableKey: return "the key that verified the request cannot encrypt the environment (RSA-OAEP)"
        }
    }
}

/// An env file sealed for the node that asked: the `env_<svc>_enc` value of Appendix A.
///
/// A fresh AES-256 key encrypts the file with AES-256-CTR under a random 16-byte initial counter
/// block (`iv`); the key itself is encrypted with RSA-OAEP (SHA-256) to the organization's public
/// key, so only the holder of the private key (the installer) can read it; `mac` is
/// HMAC-SHA256 keyed with the AES key over `iv ‖ ct`. All four are Base64.
public struct SealedEnvironment: Codable, Sendable, Equatable {
    public var key: String
    public var iv: String
    public var ct: String
    public var mac: String

    /// Seals `plaintext` to the RSA public key in `publicKeyPEM`.
    public static func seal(_ plaintext: [UInt8], publicKeyPEM: String) throws -> SealedEnvironment {
        let recipient: _RSA.Encryption.PublicKey
        do {
            recipient = try _RSA.Encryption.PublicKey(pemRepresentation: publicKeyPEM)
        } catch {
            throw NodeEnvironmentError.unusableKey
        }
        let key = SymmetricKey(size: .bits256)
        var iv = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in iv.indices { iv[index] = generator.next() }
        let ciphertext = try AES._CTR.encrypt(plaintext, using: key, nonce: AES._CTR.Nonce(nonceBytes: iv))
        let keyBytes = key.withUnsafeBytes { Data($0) }
        let wrappedKey: Data
        do {
            wrappedKey = try recipient.encrypt(keyBytes, padding: .PKCS1_OAEP_SHA256)
        } catch {
            throw NodeEnvironmentError.unusableKey
        }
        let mac = HMAC<SHA256>.authenticationCode(for: iv + Array(ciphertext), using: key)
        return SealedEnvironment(key: wrappedKey.base64EncodedString(), iv: Data(iv).base64EncodedString(),
                                 ct: ciphertext.base64EncodedString(), mac: Data(mac).base64EncodedString())
    }
}

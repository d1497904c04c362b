import CollectorTesting
import Crypto
import Foundation
import Registry
import Testing
import _CryptoExtras

/// The env files of `POST /secrets`: which file a node gets, what is filled in, and the sealed
/// form opened again with the private key (the installer's `openssl` steps are in
/// `NodeInstallerTests`).
@Suite("Node environment")
struct NodeEnvironmentTests {
    let directory = TemporaryDirectory(prefix: "node-env")

    func source() throws -> NodeEnvironmentSource {
        let root = directory.appending("env")
        try FileManager.default.createDirectory(atPath: root + "/org-a", withIntermediateDirectories: true)
        try "A=${FLASHBACK_ORG_ID}@${FLASHBACK_REGION} ${FLASHBACK_REPORT_URL} ${FLASHBACK_UNKNOWN}\n".write(toFile: root + "/s3.env", atomically: true, encoding: .utf8)
        try "org-a blob\n".write(toFile: root + "/org-a/blob.env", atomically: true, encoding: .utf8)
        try "secret outside\n".write(toFile: directory.appending("blob.env"), atomically: true, encoding: .utf8)
        return NodeEnvironmentSource(directory: root, variables: .init(publicURL: "https://c.example.test/"))
    }

    @Test func filesAreChosenPerOrganizationAndFilledIn() throws {
        let source = try source()
        let forA = try source.files(organization: "org-a", region: "us-east-1")
        #expect(forA.map(\.service) == ["s3", "blob"])
        #expect(String(decoding: forA[0].content, as: UTF8.self) == "A=org-a@us-east-1 https://c.example.test/stats/report ${FLASHBACK_UNKNOWN}\n")
        #expect(String(decoding: forA[1].content, as: UTF8.self) == "org-a blob\n")
        // Another organization, a public node, and names that would leave the directory get
        // the defaults only.
        for organization in ["org-b", "", "..", ".", "../env/org-a", "org-a/../..", "org a"] {
            #expect(try source.files(organization: organization, region: "r").map(\.service) == ["s3"], "\(organization)")
        }
    }

    @Test func aSealedFileOpensWithThePrivateKeyAndItsMacBindsIvAndCiphertext() throws {
        let privateKey = try _RSA.Encryption.PrivateKey(keySize: .bits2048)
        let plaintext = Array("SELF=1\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 1000)
        let sealed = try SealedEnvironment.seal(plaintext, publicKeyPEM: privateKey.publicKey.pemRepresentation)
        let key = SymmetricKey(data: try privateKey.decrypt(try #require(Data(base64Encoded: sealed.key)), padding: .PKCS1_OAEP_SHA256))
        let iv = try #require(Data(base64Encoded: sealed.iv))
        let ciphertext = try #require(Data(base64Encoded: sealed.ct))
        #expect(iv.count == 16 && ciphertext.count == plaintext.count)
        #expect(HMAC<SHA256>.isValidAuthenticationCode(try #require(Data(base64Encoded: sealed.mac)), authenticating: iv + ciphertext, using: key))
        let opened = try AES._CTR.decrypt(ciphertext, using: key, nonce: AES._CTR.Nonce(nonceBytes: iv))
        #expect(Array(opened) == plaintext)
        // Two seals of the same file share nothing.
        let again = try SealedEnvironment.seal(plaintext, publicKeyPEM: privateKey.publicKey.pemRepresentation)
        #expect(again.iv != sealed.iv && again.ct != sealed.ct && again.key != sealed.key)
        #expect(throws: NodeEnvironmentError.unusableKey) { try SealedEnvironment.seal(plaintext, publicKeyPEM: "not a key") }
    }
}

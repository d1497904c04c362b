import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Testing

@Suite("Secrets at rest")
struct SecretsTests {
    let directory = TemporaryDirectory(prefix: "secrets")

    @Test func masterKeyIsCreatedWithMode0600AndReloaded() throws {
        let path = directory.appending("nested/master.key")
        let (created, wasCreated) = try MasterKey.loadOrCreate(at: path)
        #expect(wasCreated)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let (loaded, createdAgain) = try MasterKey.loadOrCreate(at: path)
        #expect(!createdAgain)
        let a = created.key.withUnsafeBytes { Array($0) }
        let b = loaded.key.withUnsafeBytes { Array($0) }
        #expect(a == b)
        #expect(a.count == 32)
    }

    @Test func masterKeyFileOfTheWrongSizeIsRejected() throws {
        let path = directory.appending("short.key")
        #expect(FileManager.default.createFile(atPath: path, contents: Data("dG9vIHNob3J0".utf8)))
        #expect(throws: SecretFileError.self) { try MasterKey.loadOrCreate(at: path) }
    }

    @Test func sealedSecretRoundTrips() throws {
        let box = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let secret = Array("aws-secret-access-key/with+symbols".utf8)
        let sealed = try box.seal(secret, context: "bucket:42")
        #expect(sealed.count == 1 + 12 + secret.count + 16)
        #expect(!sealed.contains(subsequence: secret))
        #expect(try box.open(sealed, context: "bucket:42") == secret)
        // A fresh nonce each time: sealing twice gives different bytes.
        #expect(try box.seal(secret, context: "bucket:42") != sealed)
    }

    @Test func tamperedCiphertextWrongKeyAndWrongContextFail() throws {
        let key = MasterKey(key: SymmetricKey(size: .bits256))
        let box = SecretBox(masterKey: key)
        let sealed = try box.seal(Array("s3cr3t".utf8), context: "bucket:1")
        for index in [1, 13, sealed.count - 1] {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: SecretBoxError.tampered) { try box.open(tampered, context: "bucket:1") }
        }
        let other = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        #expect(throws: SecretBoxError.tampered) { try other.open(sealed, context: "bucket:1") }
        #expect(throws: SecretBoxError.tampered) { try box.open(sealed, context: "bucket:2") }
        #expect(throws: SecretBoxError.malformed) { try box.open(Array(sealed.prefix(10)), context: "bucket:1") }
        var wrongVersion = sealed
        wrongVersion[0] = 9
        #expect(throws: SecretBoxError.malformed) { try box.open(wrongVersion, context: "bucket:1") }
    }
}

extension Array where Element: Equatable {
    func contains(subsequence: [Element]) -> Bool {
        guard !subsequence.isEmpty, subsequence.count <= count else { return false }
        return (0...(count - subsequence.count)).contains { Array(self[$0..<($0 + subsequence.count)]) == subsequence }
    }
}

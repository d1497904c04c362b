import CollectorAuth
import CollectorModel
import Foundation
import JWTKit
import Testing

@Suite("User tokens")
struct TokenAuthorityTests {
    static let secret = Array("test-secret-of-at-least-32-bytes".utf8)
    static let alice = CallerIdentity(organization: "org-1", user: "alice", role: .owner, workspaces: ["ws-a", "ws-b"])

    func authority(_ secret: [UInt8] = TokenAuthorityTests.secret) async throws -> TokenAuthority {
        try await TokenAuthority.make(keys: TokenKeys(hmacSecret: secret))
    }

    @Test func mintedTokenVerifiesToTheSameCaller() async throws {
        let tokens = try await authority()
        let token = try await tokens.mint(for: Self.alice, lifetime: 3600)
        #expect(try await tokens.verify(token) == Self.alice)
    }

    @Test func aChangedCharacterIsRejected() async throws {
        let tokens = try await authority()
        let token = try await tokens.mint(for: Self.alice, lifetime: 3600)
        // Change one character in each segment in turn.
        let parts = token.split(separator: ".").map(String.init)
        for segment in 0..<3 {
            var changed = parts
            var characters = Array(changed[segment])
            let index = characters.count / 2
            characters[index] = characters[index] == "A" ? "B" : "A"
            changed[segment] = String(characters)
            await #expect(throws: TokenError.self) { try await tokens.verify(changed.joined(separator: ".")) }
        }
    }

    @Test func expiredTokenIsRejectedAsExpired() async throws {
        let tokens = try await authority()
        let token = try await tokens.mint(for: Self.alice, lifetime: 60, now: Date(timeIntervalSinceNow: -3600))
        await #expect(throws: TokenError.expired) { try await tokens.verify(token) }
    }

    @Test func tokenFromAnotherSecretIsRejected() async throws {
        let other = try await authority(Array("another-secret-of-at-least-32-bytes".utf8))
        let token = try await other.mint(for: Self.alice, lifetime: 3600)
        await #expect(throws: TokenError.badSignature) { try await authority().verify(token) }
    }

    @Test func malformedAndUnsignedTokensAreRejected() async throws {
        let tokens = try await authority()
        await #expect(throws: TokenError.malformed) { try await tokens.verify("not-a-jwt") }
        await #expect(throws: TokenError.malformed) { try await tokens.verify("a.b.") }
        // alg "none" with an empty signature, and a header naming an algorithm we do not accept.
        let payload = Data(#"{"sub":"alice","org":"org-1","role":255,"exp":9999999999}"#.utf8).base64URL
        let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URL
        await #expect(throws: TokenError.self) { try await tokens.verify("\(none).\(payload).") }
        await #expect(throws: TokenError.badSignature) { try await tokens.verify("\(none).\(payload).c2ln") }
    }

    @Test func missingClaimsAreRejected() async throws {
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: Self.secret), digestAlgorithm: .sha256)
        struct NoOrg: JWTPayload {
            var sub: SubjectClaim
            var exp: ExpirationClaim
            func verify(using algorithm: some JWTAlgorithm) async throws {}
        }
        let token = try await keys.sign(NoOrg(sub: "alice", exp: .init(value: Date(timeIntervalSinceNow: 600))))
        await #expect(throws: TokenError.self) { try await authority().verify(token) }
    }

    @Test func shortSecretsAreRefused() async throws {
        await #expect(throws: TokenKeyError.self) { try await TokenAuthority.make(keys: TokenKeys(hmacSecret: Array("short".utf8))) }
    }

    @Test func rs256TokensVerifyWithAPublicKey() async throws {
        let privateKey = try Insecure.RSA.PrivateKey(pem: TestKeys.rsaPrivatePEM)
        let issuer = await JWTKeyCollection().add(rsa: privateKey, digestAlgorithm: .sha256)
        let tokens = try await TokenAuthority.make(keys: TokenKeys(publicKeyPEM: privateKey.publicKey.pemRepresentation))
        #expect(tokens.algorithms == ["RS256"])
        let claims = AccessTokenClaims(identity: Self.alice, issuedAt: Date(), expiresAt: Date(timeIntervalSinceNow: 600))
        #expect(try await tokens.verify(try await issuer.sign(claims)) == Self.alice)
        // A public-key authority cannot mint, and HS256 tokens signed with the PEM text are refused.
        await #expect(throws: TokenError.signingUnavailable) { try await tokens.mint(for: Self.alice, lifetime: 60) }
        let confused = await JWTKeyCollection().add(hmac: HMACKey(from: Array(privateKey.publicKey.pemRepresentation.utf8)), digestAlgorithm: .sha256)
        await #expect(throws: TokenError.badSignature) { try await tokens.verify(try await confused.sign(claims)) }
    }

    @Test func es256AndEdDSATokensVerifyWithPublicKeys() async throws {
        let claims = AccessTokenClaims(identity: Self.alice, issuedAt: Date(), expiresAt: Date(timeIntervalSinceNow: 600))

        let ecKey = ES256PrivateKey()
        let ecIssuer = await JWTKeyCollection().add(ecdsa: ecKey)
        let ecTokens = try await TokenAuthority.make(keys: TokenKeys(publicKeyPEM: ecKey.publicKey.pemRepresentation))
        #expect(try await ecTokens.verify(try await ecIssuer.sign(claims)) == Self.alice)

        let edKey = try EdDSA.PrivateKey(curve: .ed25519)
        let edIssuer = await JWTKeyCollection().add(eddsa: edKey)
        let edTokens = try await TokenAuthority.make(keys: TokenKeys(publicKeyPEM: edKey.publicKey.pemRepresentation))
        #expect(try await edTokens.verify(try await edIssuer.sign(claims)) == Self.alice)
        // A token of one issuer does not pass the other.
        await #expect(throws: TokenError.self) { try await ecTokens.verify(try await edIssuer.sign(claims)) }
    }

    @Test func rolesParseFromNamesAndNumbers() {
        #expect(OrganizationRole(parsing: "owner") == .owner)
        #expect(OrganizationRole(parsing: "ADMIN") == .administrators)
        #expect(OrganizationRole(parsing: "user") == .user)
        #expect(OrganizationRole(parsing: "254") == .administrators)
        #expect(OrganizationRole(parsing: "256") == nil)
        #expect(OrganizationRole(parsing: "root") == nil)
        #expect(OrganizationRole.owner.canAdministerOrganization)
        #expect(!OrganizationRole.billing.canAdministerOrganization)
    }
}

extension Data {
    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

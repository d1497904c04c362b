import CollectorModel
import Crypto
import Foundation
import JWTKit

/// Why a bearer token was refused. The messages are safe to show to the caller.
public enum TokenError: Error, Equatable, Sendable, CustomStringConvertible {
    case missing
    case malformed
    case expired
    case badSignature
    case invalidClaims(String)
    case signingUnavailable

    public var description: String {
        switch self {
        case .missing: return "missing bearer token"
        case .malformed: return "malformed bearer token"
        case .expired: return "token expired"
        case .badSignature: return "invalid token signature"
        case .invalidClaims(let reason): return "invalid token claims: \(reason)"
        case .signingUnavailable: return "no HS256 secret is configured; tokens cannot be minted"
        }
    }
}

/// Where the keys that verify user tokens come from.
public struct TokenKeys: Sendable {
    /// An HS256 shared secret (mints and verifies).
    public var hmacSecret: [UInt8]?
    /// A PEM public key (RS256, ES256 or EdDSA/Ed25519) of an external issuer (verifies only).
    public var publicKeyPEM: String?

    /// A `TokenKeys` from its parts.
    public init(hmacSecret: [UInt8]? = nil, publicKeyPEM: String? = nil) {
        self.hmacSecret = hmacSecret
        self.publicKeyPEM = publicKeyPEM
    }
}

/// Errors in the configured key material; reported once at startup.
public struct TokenKeyError: Error, CustomStringConvertible {
    public let description: String
}

/// Verifies user tokens (and mints them when an HS256 secret is configured).
///
/// Each configured key verifies only tokens whose header names its algorithm, so an HS256 token
/// can never be checked against (or forged with) an RSA public key, and a token needs no `kid`.
/// Thread-safety: `Sendable`; the key collections are immutable after ``make(keys:)``.
public struct TokenAuthority: Sendable {
    /// One collection per accepted `alg` header value, each holding its single default key.
    private let collections: [String: JWTKeyCollection]

    private init(collections: [String: JWTKeyCollection]) {
        self.collections = collections
    }

    /// The `alg` values this authority accepts, e.g. `["HS256", "RS256"]`.
    public var algorithms: [String] { collections.keys.sorted() }

    /// Builds an authority from the configured keys.
    /// - Throws: ``TokenKeyError`` when the public key is not a PEM RSA, P-256 or Ed25519 key, or
    ///   when the HMAC secret is shorter than 16 bytes.
    public static func make(keys: TokenKeys) async throws -> TokenAuthority {
        var collections: [String: JWTKeyCollection] = [:]
        if let secret = keys.hmacSecret {
            guard secret.count >= 32 else { throw TokenKeyError(description: "the JWT secret must be at least 32 bytes long (RFC 7518 §3.2)") }
            collections["HS256"] = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        }
        if let pem = keys.publicKeyPEM {
            if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
                collections["RS256"] = await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256)
            } else if let ecdsa = try? ES256PublicKey(pem: pem) {
                collections["ES256"] = await JWTKeyCollection().add(ecdsa: ecdsa)
            } else if let eddsa = try? EdDSA.PublicKey(pem: pem) {
                collections["EdDSA"] = await JWTKeyCollection().add(eddsa: eddsa)
            } else {
                throw TokenKeyError(description: "the JWT public key is not a PEM RSA, P-256 (ES256) or Ed25519 (EdDSA) public key")
            }
        }
        return TokenAuthority(collections: collections)
    }

    private struct Header: Decodable {
        var alg: String
    }

    /// Verifies a compact JWT and returns the caller it names.
    public func verify(_ token: String) async throws(TokenError) -> CallerIdentity {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }),
              let headerBytes = Data(base64URLEncodedNoPadding: String(parts[0])),
              let header = try? JSONDecoder().decode(Header.self, from: headerBytes)
        else { throw .malformed }
        guard let collection = collections[header.alg] else { throw .badSignature }
        let claims: AccessTokenClaims
        do {
            claims = try await collection.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .claimVerificationFailure:
                if error.failedClaim is ExpirationClaim { throw .expired }
                throw .invalidClaims(error.reason ?? "claim verification failed")
            case .malformedToken:
                throw .malformed
            default:
                throw .badSignature
            }
        } catch is DecodingError {
            throw .invalidClaims("sub, org, role and exp are required")
        } catch {
            throw .malformed
        }
        guard !claims.org.isEmpty else { throw .invalidClaims("org is empty") }
        guard !claims.sub.value.isEmpty else { throw .invalidClaims("sub is empty") }
        guard (0...255).contains(claims.role) else { throw .invalidClaims("role must be 0...255") }
        return claims.identity
    }

    /// Mints an HS256 token for `identity` valid for `lifetime` seconds from `now`.
    public func mint(for identity: CallerIdentity, lifetime: TimeInterval, now: Date = Date()) async throws -> String {
        guard let collection = collections["HS256"] else { throw TokenError.signingUnavailable }
        let claims = AccessTokenClaims(identity: identity, issuedAt: now, expiresAt: now.addingTimeInterval(lifetime))
        return try await collection.sign(claims)
    }
}

extension Data {
    /// Decodes base64url without padding, as used in JWT segments.
    init?(base64URLEncodedNoPadding text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64.append("=") }
        self.init(base64Encoded: base64)
    }
}

import AsyncHTTPClient
import CollectorModel
import Crypto
import FlashbackWire
import Foundation
import NIOCore
import NIOHTTP1
import _CryptoExtras

/// Where Google's OAuth2 token endpoint and the GCS JSON API are (`--gcs-token-url`,
/// `--gcs-api-url`; emulators in tests).
public struct GCSEndpoints: Sendable, Equatable {
    public var tokenURL: String
    public var apiURL: String

    /// Google's own endpoints, or others for emulators.
    public init(tokenURL: String = GCSEndpoints.googleTokenURL, apiURL: String = GCSEndpoints.googleAPIURL) {
        self.tokenURL = tokenURL
        self.apiURL = apiURL.hasSuffix("/") ? String(apiURL.dropLast()) : apiURL
    }

    public static let googleTokenURL = "https://oauth2.googleapis.com/token"
    public static let googleAPIURL = "https://storage.googleapis.com"
}

/// GCS "classic" credentials as Flashback documents them: a service account's client email as
/// the bucket's `key` and its PEM private key as the `secret`. They are not HMAC keys: the
/// collector signs an RS256 JWT assertion with the private key, trades it for an access token
/// (OAuth2 JWT-bearer grant) and asks the GCS JSON API for the bucket.
public enum GCSServiceAccount {
    /// Whether `key`/`secret` are a service account (an email and a PEM private key).
    public static func matches(key: String, secret: String?) -> Bool {
        key.contains("@") && !key.contains(" ") && (secret ?? "").contains("-----BEGIN") && (secret ?? "").contains("PRIVATE KEY-----")
    }

    /// Whether `key` is a client email with no private key: delegated GCS access.
    public static func isDelegated(key: String, secret: String?) -> Bool {
        key.contains("@") && key.hasSuffix(".gserviceaccount.com") && (secret ?? "").isEmpty
    }

    static let scope = "https://www.googleapis.com/auth/devstorage.read_only"

    /// The signed assertion for `email` (RS256, one hour, audience = the token URL).
    static func assertion(email: String, privateKeyPEM: String, tokenURL: String, now: Date) throws -> String {
        let key = try _RSA.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        func base64URL(_ data: Data) -> String {
            data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let issued = Int64(saturating: now.timeIntervalSince1970)
        let header = try JSONSerialization.data(withJSONObject: ["alg": "RS256", "typ": "JWT"], options: [.sortedKeys])
        let claims = try JSONSerialization.data(withJSONObject: [
            "iss": email, "scope": scope, "aud": tokenURL, "iat": issued, "exp": issued + 3600,
        ] as [String: Any], options: [.sortedKeys, .withoutEscapingSlashes])
        let signingInput = base64URL(header) + "." + base64URL(claims)
        let signature = try key.signature(for: Data(signingInput.utf8), padding: .insecurePKCS1v1_5)
        return signingInput + "." + base64URL(signature.rawRepresentation)
    }
}

extension BucketValidator {
    /// Validates a GCS bucket with service-account credentials: token, then `GET /storage/v1/b/{bucket}`.
    func validateServiceAccount(_ target: BucketEndpoint, email: String, privateKeyPEM: String, now: Date,
                                elapsed: () -> Int) async -> BucketValidationResult {
        func offline(_ message: String) -> BucketValidationResult {
            BucketValidationResult(status: "OFFLINE", latencyMs: elapsed(), message: message)
        }
        let endpoints = gcs
        let assertion: String
        do {
            assertion = try GCSServiceAccount.assertion(email: email, privateKeyPEM: privateKeyPEM, tokenURL: endpoints.tokenURL, now: now)
        } catch {
            return offline("the secret is not a usable RSA private key (PEM) of service account \(email)")
        }
        guard let tokenURL = URL(string: endpoints.tokenURL), let apiURL = URL(string: endpoints.apiURL + "/storage/v1/b/"
            + SigV4.uriEncode(target.bucket, keepSlash: false) + "?fields=name") else {
            return offline("the GCS token or API URL is not a URL")
        }
        do {
            try await policy.check(tokenURL)
            try await policy.check(apiURL)
        } catch {
            return offline(error.message)
        }
        // The token: OAuth2 JWT-bearer grant.
        var tokenRequest = HTTPClientRequest(url: endpoints.tokenURL)
        tokenRequest.method = .POST
        tokenRequest.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        tokenRequest.body = .bytes(ByteBuffer(string: "grant_type=" + SigV4.uriEncode("urn:ietf:params:oauth:grant-type:jwt-bearer", keepSlash: false)
            + "&assertion=" + assertion))
        let token: String
        do {
            let response = try await client.execute(tokenRequest, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            let answer = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
            guard (200..<300).contains(Int(response.status.code)), let accessToken = answer["access_token"] as? String, !accessToken.isEmpty else {
                let described: String? = (answer["error_description"] as? String) ?? (answer["error"] as? String)
                let reason = described.map { ": " + String($0.prefix(200)) } ?? ""
                return offline("Google refused the service account's token request (\(response.status.code)\(reason)): check the client email and private key")
            }
            token = accessToken
        } catch {
            return offline("token endpoint: " + Self.describe(error, host: endpoints.tokenURL))
        }
        // The bucket.
        var request = HTTPClientRequest(url: apiURL.absoluteString)
        request.method = .GET
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        do {
            let response = try await client.execute(request, timeout: timeout)
            _ = try await response.body.collect(upTo: 64 * 1024)
            let code = Int(response.status.code)
            switch code {
            case 200..<300: return BucketValidationResult(status: "ONLINE", latencyMs: elapsed(), message: "bucket \(target.bucket) is reachable (\(code))")
            case 401, 403: return offline("access denied by Google (\(code)): the service account may not read bucket \(target.bucket)")
            case 404: return offline("bucket \(target.bucket) not found (404)")
            default: return offline("the provider answered \(code)")
            }
        } catch {
            return offline(Self.describe(error, host: endpoints.apiURL))
        }
    }
}

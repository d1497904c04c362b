import CollectorModel
import Crypto
import FlashbackWire
import Foundation

/// Signing the collector's own validation requests and verifying requests apps signed with repo
/// keys (the HMAC half of ``SigV4``; parsing lives in `FlashbackWire`).
extension SigV4 {
    /// SHA-256 of the empty payload, hex.
    public static let emptyPayloadHash = hex(SHA256.hash(data: [UInt8]()))

    /// Signs `request` in place: adds `x-amz-date`, `x-amz-content-sha256` and `Authorization`.
    /// `host` must already be among the headers.
    public static func sign(
        _ request: inout Request, accessKeyID: String, secret: String, region: String,
        service: String = "s3", payloadHash: String = emptyPayloadHash, date: Date
    ) {
        let amzDate = amzDateFormat(date)
        request.headers.removeAll { ["x-amz-date", "x-amz-content-sha256", "authorization"].contains($0.name.lowercased()) }
        request.headers.append((name: "x-amz-date", value: amzDate))
        request.headers.append((name: "x-amz-content-sha256", value: payloadHash))
        let signed = Array(Set(request.headers.map { $0.name.lowercased() })).sorted()
        let scopeDate = String(amzDate.prefix(8))
        let signature = self.signature(
            request, signedHeaders: signed, payloadHash: payloadHash, amzDate: amzDate,
            scope: "\(scopeDate)/\(region)/\(service)/aws4_request", secret: secret, scopeDate: scopeDate, region: region, service: service)
        request.headers.append((name: "Authorization",
            value: "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scopeDate)/\(region)/\(service)/aws4_request, SignedHeaders=\(signed.joined(separator: ";")), Signature=\(signature)"))
    }

    /// Why a signature was refused.
    public enum VerificationError: Error, Equatable, Sendable {
        case missingDate
        case clockSkew
        case scopeDateMismatch
        case signatureMismatch
        /// A presigned URL used after `X-Amz-Date` + `X-Amz-Expires`.
        case expired
    }

    /// What a presigned URL's payload hash is: S3 does not sign the body of query-signed requests.
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Verifies a presigned URL (``PresignedQuery``) given the secret of its access key: valid
    /// from `X-Amz-Date` (less `maxSkew` for clocks ahead) until `X-Amz-Date` + `X-Amz-Expires`.
    public static func verifyPresigned(_ request: Request, presigned: PresignedQuery, secret: String, now: Date,
                                       maxSkew: TimeInterval = 900) throws(VerificationError) {
        guard let seconds = ISO8601.parseBasic(presigned.amzDate) else { throw .missingDate }
        guard presigned.amzDate.hasPrefix(presigned.authorization.date) else { throw .scopeDateMismatch }
        let current = now.timeIntervalSince1970
        guard TimeInterval(seconds) - current <= maxSkew else { throw .clockSkew }
        guard current <= TimeInterval(seconds) + TimeInterval(presigned.expires) else { throw .expired }
        var signed = request
        signed.query = presigned.signedQuery
        let authorization = presigned.authorization
        let expected = signature(
            signed, signedHeaders: authorization.signedHeaders, payloadHash: unsignedPayload, amzDate: presigned.amzDate,
            scope: authorization.scope, secret: secret, scopeDate: authorization.date, region: authorization.region, service: authorization.service)
        guard ConstantTime.equals(expected.utf8, authorization.signature.utf8) else { throw .signatureMismatch }
    }

    /// Verifies a request an app signed, given the secret of `authorization.accessKeyID`.
    /// - Parameter maxSkew: accepted distance between `x-amz-date` and `now` (S3 allows 15 min).
    public static func verify(_ request: Request, authorization: Authorization, secret: String, now: Date, maxSkew: TimeInterval = 900) throws(VerificationError) {
        guard let amzDate = request.values(of: "x-amz-date").first ?? request.values(of: "date").first,
              let seconds = ISO8601.parseBasic(amzDate) else { throw .missingDate }
        guard abs(TimeInterval(seconds) - now.timeIntervalSince1970) <= maxSkew else { throw .clockSkew }
        guard amzDate.hasPrefix(authorization.date) else { throw .scopeDateMismatch }
        let payloadHash = request.values(of: "x-amz-content-sha256").first ?? emptyPayloadHash
        let expected = signature(
            request, signedHeaders: authorization.signedHeaders, payloadHash: payloadHash, amzDate: amzDate,
            scope: authorization.scope, secret: secret, scopeDate: authorization.date, region: authorization.region, service: authorization.service)
        guard ConstantTime.equals(expected.utf8, authorization.signature.utf8) else { throw .signatureMismatch }
    }

    static func signature(
        _ request: Request, signedHeaders: [String], payloadHash: String, amzDate: String,
        scope: String, secret: String, scopeDate: String, region: String, service: String
    ) -> String {
        let canonical = canonicalRequest(request, signedHeaders: signedHeaders, payloadHash: payloadHash)
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hex(SHA256.hash(data: Array(canonical.utf8))))"
        var key = SymmetricKey(data: Array("AWS4\(secret)".utf8))
        for part in [scopeDate, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

}

import CollectorModel
import Crypto
import Foundation

/// AWS Signature Version 4 (header form) for S3 and S3-compatible services: signing the
/// collector's own validation requests and verifying requests apps signed with repo keys.
///
/// Pure functions over strings and bytes; no I/O.
public enum SigV4 {
    /// The parts of an HTTP request that SigV4 covers.
    public struct Request: Sendable {
        public var method: String
        /// The path as sent on the wire (percent-encoded), e.g. `/bucket/my%20key`.
        public var path: String
        /// The raw query string without `?`, e.g. `list-type=2&max-keys=1`.
        public var query: String
        /// Header names in any case; a name may repeat.
        public var headers: [(name: String, value: String)]

        public init(method: String, path: String, query: String, headers: [(name: String, value: String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }

        func values(of name: String) -> [String] {
            headers.filter { $0.name.lowercased() == name }.map(\.value)
        }
    }

    /// The parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    public struct Authorization: Sendable, Equatable {
        public var accessKeyID: String
        /// `yyyymmdd` of the credential scope.
        public var date: String
        public var region: String
        public var service: String
        public var signedHeaders: [String]
        /// Lower-case hex.
        public var signature: String

        public var scope: String { "\(date)/\(region)/\(service)/aws4_request" }

        /// Parses the header value; `nil` when it is not a SigV4 header.
        public init?(header: String) {
            guard header.hasPrefix("AWS4-HMAC-SHA256 ") else { return nil }
            var fields: [String: String] = [:]
            for part in header.dropFirst("AWS4-HMAC-SHA256 ".count).split(separator: ",") {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                guard let equals = trimmed.firstIndex(of: "=") else { return nil }
                fields[String(trimmed[..<equals])] = String(trimmed[trimmed.index(after: equals)...])
            }
            guard let credential = fields["Credential"], let signed = fields["SignedHeaders"], let signature = fields["Signature"] else { return nil }
            let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard scope.count == 5, scope[4] == "aws4_request", !scope[0].isEmpty, scope[1].count == 8 else { return nil }
            accessKeyID = scope[0]
            date = scope[1]
            region = scope[2]
            service = scope[3]
            signedHeaders = signed.split(separator: ";").map { $0.lowercased() }
            self.signature = signature.lowercased()
            guard !signedHeaders.isEmpty, signedHeaders.contains("host"), self.signature.count == 64 else { return nil }
        }

        init(accessKeyID: String, date: String, region: String, service: String, signedHeaders: [String], signature: String) {
            self.accessKeyID = accessKeyID
            self.date = date
            self.region = region
            self.service = service
            self.signedHeaders = signedHeaders
            self.signature = signature
        }
    }

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
    }

    /// Verifies a request an app signed, given the secret of `authorization.accessKeyID`.
    /// - Parameter maxSkew: accepted distance between `x-amz-date` and `now` (S3 allows 15 min).
    public static func verify(_ request: Request, authorization: Authorization, secret: String, now: Date, maxSkew: TimeInterval = 900) throws(VerificationError) {
        guard let amzDate = request.values(of: "x-amz-date").first ?? request.values(of: "date").first,
              let date = parseAmzDate(amzDate) else { throw .missingDate }
        guard abs(date.timeIntervalSince(now)) <= maxSkew else { throw .clockSkew }
        guard amzDate.hasPrefix(authorization.date) else { throw .scopeDateMismatch }
        let payloadHash = request.values(of: "x-amz-content-sha256").first ?? emptyPayloadHash
        let expected = signature(
            request, signedHeaders: authorization.signedHeaders, payloadHash: payloadHash, amzDate: amzDate,
            scope: authorization.scope, secret: secret, scopeDate: authorization.date, region: authorization.region, service: authorization.service)
        guard constantTimeEquals(Array(expected.utf8), Array(authorization.signature.utf8)) else { throw .signatureMismatch }
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

    /// The canonical request of SigV4 (S3 flavour: the path is not normalised, only re-encoded).
    static func canonicalRequest(_ request: Request, signedHeaders: [String], payloadHash: String) -> String {
        let path = request.path.isEmpty ? "/" : request.path
        let canonicalURI = uriEncode(percentDecode(path), keepSlash: true)
        var pairs: [(String, String)] = []
        for item in request.query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = uriEncode(percentDecode(String(parts[0])), keepSlash: false)
            let value = parts.count > 1 ? uriEncode(percentDecode(String(parts[1])), keepSlash: false) : ""
            pairs.append((name, value))
        }
        pairs.sort { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
        let canonicalQuery = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        let canonicalHeaders = signedHeaders.map { name in
            let values = request.values(of: name).map { value in
                value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
            }
            return "\(name):\(values.joined(separator: ","))\n"
        }.joined()
        return [request.method.uppercased(), canonicalURI, canonicalQuery, canonicalHeaders, signedHeaders.joined(separator: ";"), payloadHash]
            .joined(separator: "\n")
    }

    /// Encodes every byte but the unreserved characters (`A-Z a-z 0-9 - _ . ~`) and, for paths, `/`.
    static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Percent-decoding that leaves `+` alone (S3 paths and SigV4 queries do not use form encoding).
    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
               let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func amzDateFormat(_ date: Date) -> String {
        let seconds = UnixTime(clamping: date).seconds
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let (year, month, day) = CivilDate.civil(daysSinceEpoch: days)
        let secondOfDay = seconds - days * 86_400
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", year, month, day, secondOfDay / 3600, (secondOfDay % 3600) / 60, secondOfDay % 60)
    }

    /// Parses `yyyyMMdd'T'HHmmss'Z'`.
    static func parseAmzDate(_ text: String) -> Date? {
        let digits = Array(text.utf8)
        guard digits.count == 16, digits[8] == UInt8(ascii: "T"), digits[15] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: digits[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(4..<6), let day = number(6..<8),
              let hour = number(9..<11), let minute = number(11..<13), let second = number(13..<15),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let days = CivilDate.daysSinceEpoch(year: year, month: month, day: day)
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + Int64(hour * 3600 + minute * 60 + second)))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Compares without an early exit, so timing does not reveal where two secrets differ.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<a.count { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

import CollectorModel
import Foundation

/// AWS Signature Version 4 (header form) for S3 and S3-compatible services: the request parts it
/// covers, the `Authorization` header, the canonical request and the `x-amz-date` form.
///
/// Pure parsing over strings and bytes, no I/O and no cryptography: it reads what apps send, so
/// it lives here with the other request decoders and is fuzzed (`flashback-fuzz sigv4`). Signing
/// and verification (HMAC) extend it in `Registry`.
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

        /// A `Request` from its parts.
        public init(method: String, path: String, query: String, headers: [(name: String, value: String)]) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
        }

        /// Every value of header `name` (case-insensitive), in the order sent.
        public func values(of name: String) -> [String] {
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
            self.init(credential: credential, signedHeaders: signed, signature: signature)
        }

        /// The parts as both forms carry them: `Credential` (`key/yyyymmdd/region/service/aws4_request`),
        /// `SignedHeaders` (`;`-separated, must name `host`) and `Signature` (64 hex digits).
        init?(credential: String, signedHeaders signed: String, signature: String) {
            let scope = credential.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard scope.count == 5, scope[4] == "aws4_request", !scope[0].isEmpty, scope[1].utf8.count == 8 else { return nil }
            accessKeyID = scope[0]
            date = scope[1]
            region = scope[2]
            service = scope[3]
            signedHeaders = signed.split(separator: ";").map { $0.lowercased() }
            self.signature = signature.lowercased()
            // 64 lower-case hex digits (counted in bytes: a Character count let invalid UTF-8 through).
            guard !signedHeaders.isEmpty, signedHeaders.contains("host"), self.signature.utf8.count == 64,
                  self.signature.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) })
            else { return nil }
        }

        /// A `Authorization` from its parts.
        public init(accessKeyID: String, date: String, region: String, service: String, signedHeaders: [String], signature: String) {
            self.accessKeyID = accessKeyID
            self.date = date
            self.region = region
            self.service = service
            self.signedHeaders = signedHeaders
            self.signature = signature
        }
    }

    /// The signature of a presigned URL: SigV4 in the query string (`X-Amz-Algorithm`,
    /// `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`,
    /// `X-Amz-Signature`), as SDKs make them for browser uploads and shared links.
    public struct PresignedQuery: Sendable, Equatable {
        /// The longest validity S3 accepts: 7 days.
        public static let maxExpires = 604_800

        public var authorization: Authorization
        /// `X-Amz-Date` (`yyyyMMdd'T'HHmmss'Z'`).
        public var amzDate: String
        /// `X-Amz-Expires`: seconds the URL is valid after `amzDate`, 1 … 604,800.
        public var expires: Int
        /// The query string without `X-Amz-Signature`, which is what was signed.
        public var signedQuery: String

        /// Parses `query`; `nil` unless it carries a complete, well-formed SigV4 query signature.
        public init?(query: String) {
            var fields: [String: String] = [:]
            var kept: [Substring] = []
            for item in query.split(separator: "&", omittingEmptySubsequences: true) {
                let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = percentDecode(String(parts[0]))
                guard name.hasPrefix("X-Amz-") else { kept.append(item); continue }
                guard fields[name] == nil else { return nil }
                fields[name] = parts.count > 1 ? percentDecode(String(parts[1])) : ""
                if name != "X-Amz-Signature" { kept.append(item) }
            }
            guard fields["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256", let credential = fields["X-Amz-Credential"],
                  let amzDate = fields["X-Amz-Date"], amzDate.utf8.count == 16,
                  let expiresText = fields["X-Amz-Expires"], expiresText.utf8.count <= 6, let expires = Int(expiresText),
                  (1...Self.maxExpires).contains(expires),
                  let signed = fields["X-Amz-SignedHeaders"], let signature = fields["X-Amz-Signature"],
                  let authorization = Authorization(credential: credential, signedHeaders: signed, signature: signature)
            else { return nil }
            self.authorization = authorization
            self.amzDate = amzDate
            self.expires = expires
            self.signedQuery = kept.joined(separator: "&")
        }
    }

    /// The canonical request of SigV4 (S3 flavour: the path is not normalised, only re-encoded).
    public static func canonicalRequest(_ request: Request, signedHeaders: [String], payloadHash: String) -> String {
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
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(upperHexDigits[Int(byte >> 4)])
                out.append(upperHexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static let upperHexDigits = Array("0123456789ABCDEF".utf8)
    private static let lowerHexDigits = Array("0123456789abcdef".utf8)

    /// Percent-decoding that leaves `+` alone (S3 paths and SigV4 queries do not use form encoding).
    public static func percentDecode(_ text: String) -> String {
        let input = Array(text.utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(input.count)
        var index = 0
        while index < input.count {
            // Exactly two hex digits follow a `%` (`UInt8(_:radix:)` would also take "+1").
            if input[index] == UInt8(ascii: "%"), let high = hexValue(input, index + 1), let low = hexValue(input, index + 2) {
                bytes.append(high << 4 | low)
                index += 3
            } else {
                bytes.append(input[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ bytes: [UInt8], _ index: Int) -> UInt8? {
        guard index < bytes.count else { return nil }
        switch bytes[index] {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return bytes[index] - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return bytes[index] - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return bytes[index] - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `date` in the basic ISO-8601 form of `X-Amz-Date` (`20240201T100000Z`).
    public static func amzDateFormat(_ date: Date) -> String {
        let seconds = UnixTime(clamping: date).seconds
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let (year, month, day) = CivilDate.civil(daysSinceEpoch: days)
        let secondOfDay = seconds - days * 86_400
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", year, month, day, secondOfDay / 3600, (secondOfDay % 3600) / 60, secondOfDay % 60)
    }

    /// Lower-case hexadecimal of `bytes`.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(lowerHexDigits[Int(byte >> 4)])
            out.append(lowerHexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

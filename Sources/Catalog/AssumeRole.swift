import AsyncHTTPClient
import CollectorModel
import Crypto
import FlashbackWire
import Foundation
import NIOCore
import NIOHTTP1

/// The collector's own AWS identity, with which it assumes the roles organizations delegate to it
/// (S3 "delegated" access: a bucket whose `key` is a role ARN and whose `secret` is the external
/// id). `--sts-endpoint`, `FLASHBACK_AWS_ACCESS_KEY_ID`, `FLASHBACK_AWS_SECRET_ACCESS_KEY`.
public struct STSSettings: Sendable {
    /// AWS STS (or a compatible service, e.g. moto in the tests).
    public var endpoint: String
    public var region: String
    public var accessKeyID: String
    public var secretAccessKey: String
    /// For when the collector's own credentials are temporary.
    public var sessionToken: String?

    /// The collector's identity at `endpoint`.
    public init(endpoint: String = STSSettings.defaultEndpoint, region: String = "us-east-1", accessKeyID: String, secretAccessKey: String,
                sessionToken: String? = nil) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.region = region
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// AWS's global STS endpoint.
    public static let defaultEndpoint = "https://sts.amazonaws.com"
}

/// Temporary credentials from STS `AssumeRole`.
public struct TemporaryCredentials: Sendable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String
}

/// S3 delegated access: the bucket's `key` is an IAM role ARN, its `secret` the external id.
public enum RoleARN {
    /// Whether `key` is an IAM role ARN (`arn:<partition>:iam::<12-digit account>:role/<path/name>`).
    public static func matches(_ key: String) -> Bool {
        let parts = key.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[1].hasPrefix("aws"), parts[2] == "iam", parts[3].isEmpty,
              parts[4].utf8.count == 12, parts[4].allSatisfy(\.isNumber), parts[5].hasPrefix("role/"), parts[5].count > 5,
              key.utf8.count <= 2048 else { return false }
        return true
    }
}

extension BucketValidator {
    /// Calls STS `AssumeRole` for `roleARN` with `externalID` as the collector's identity and
    /// answers the temporary credentials (15 minutes), or why not, in words for the operator.
    func assumeRole(_ roleARN: String, externalID: String, sts: STSSettings, now: Date) async throws(ValidationSetupError) -> TemporaryCredentials {
        func form(_ value: String) -> String { SigV4.uriEncode(value, keepSlash: false) }
        let body = "Action=AssumeRole&Version=2011-06-15&RoleArn=\(form(roleARN))&RoleSessionName=flashback-collector"
            + "&ExternalId=\(form(externalID))&DurationSeconds=900"
        guard let url = URL(string: sts.endpoint), let host = url.host else {
            throw ValidationSetupError(message: "the STS endpoint \(sts.endpoint) is not a URL")
        }
        do {
            try await policy.check(url)
        } catch {
            throw ValidationSetupError(message: "STS: \(error.message)")
        }
        let hostHeader = Self.authority(host: host, port: url.port)
        var signed = SigV4.Request(method: "POST", path: url.path.isEmpty ? "/" : url.path, query: "",
                                   headers: [(name: "host", value: hostHeader), (name: "content-type", value: "application/x-www-form-urlencoded")])
        if let token = sts.sessionToken { signed.headers.append((name: "x-amz-security-token", value: token)) }
        SigV4.sign(&signed, accessKeyID: sts.accessKeyID, secret: sts.secretAccessKey, region: sts.region, service: "sts",
                   payloadHash: SigV4.hex(SHA256.hash(data: Array(body.utf8))), date: now)
        var request = HTTPClientRequest(url: "\(url.scheme ?? "https")://\(hostHeader)\(signed.path)")
        request.method = .POST
        for header in signed.headers where header.name != "host" { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(string: body))
        let text: String
        let code: Int
        do {
            let response = try await client.execute(request, timeout: timeout)
            text = String(buffer: try await response.body.collect(upTo: 64 * 1024))
            code = Int(response.status.code)
        } catch {
            throw ValidationSetupError(message: "STS: " + Self.describe(error, host: sts.endpoint))
        }
        guard (200..<300).contains(code) else {
            let detail = Self.errorCode(in: text).map { " \($0)" } ?? ""
            throw ValidationSetupError(message: "STS refused to assume role \(roleARN) (\(code)\(detail)): check the role's trust policy and external id")
        }
        guard let key = Self.element("AccessKeyId", in: text), let secret = Self.element("SecretAccessKey", in: text),
              let token = Self.element("SessionToken", in: text) else {
            throw ValidationSetupError(message: "STS answered without credentials")
        }
        return TemporaryCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
    }

    /// The text of the first `<name>` element of an XML document (at most 4 KiB).
    static func element(_ name: String, in xml: String) -> String? {
        guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
        let value = String(xml[start.upperBound..<end.lowerBound]).trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty || value.utf8.count > 4096 ? nil : value
    }
}

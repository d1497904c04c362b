import AsyncHTTPClient
import FlashbackWire
import Foundation
import NIOCore
import NIOHTTP1

/// The outcome of checking a bucket against its provider (`POST /bucket/{id}/validate`).
public struct BucketValidationResult: Sendable, Equatable {
    /// `ONLINE` when the provider answered 2xx, else `OFFLINE`.
    public var status: String
    public var latencyMs: Int
    /// What happened, in words an operator can act on.
    public var message: String

    public var isOnline: Bool { status == "ONLINE" }
}

/// What a validation needs to know about a bucket.
public struct BucketEndpoint: Sendable {
    public var storageType: StorageType
    public var bucket: String
    public var key: String?
    public var secret: String?
    public var endpoint: String?
    public var region: String?

    /// A `BucketEndpoint` from its parts.
    public init(storageType: StorageType, bucket: String, key: String?, secret: String?, endpoint: String?, region: String?) {
        self.storageType = storageType
        self.bucket = bucket
        self.key = key
        self.secret = secret
        self.endpoint = endpoint
        self.region = region
    }
}

/// Talks to the provider of a bucket with a signed, harmless request: S3 and S3/GCS-compatible
/// services get a SigV4-signed ListObjectsV2 (`max-keys=1`); Azure gets a Shared-Key-signed Get
/// Container Properties. Never retries and never follows a redirect; answers within `timeout`.
/// The target URL must pass `policy` (no loopback, link-local or private address unless the
/// operator allows it) before anything is sent.
public struct BucketValidator: Sendable {
    public var timeout: TimeAmount
    public var policy: OutboundPolicy
    /// The collector's own AWS identity for delegated access (role ARN buckets); `nil` refuses them.
    public var sts: STSSettings?
    /// Google's token endpoint and GCS JSON API, for service-account credentials.
    public var gcs: GCSEndpoints
    let client: HTTPClient

    /// A client that reports a redirect instead of following it, so that an allowed endpoint
    /// cannot send the signed request on to an address the policy refuses.
    public static let noRedirectClient = HTTPClient(
        eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(redirectConfiguration: .disallow))

    /// A validator using `client` (no redirects), giving up after `timeout`, reaching only what `policy` allows.
    public init(client: HTTPClient = BucketValidator.noRedirectClient, timeout: TimeAmount = .seconds(5), policy: OutboundPolicy = .publicOnly,
                sts: STSSettings? = nil, gcs: GCSEndpoints = GCSEndpoints()) {
        self.sts = sts
        self.gcs = gcs
        self.client = client
        self.timeout = timeout
        self.policy = policy
    }

    /// Checks the credentials against the provider (a listing of at most one object) and says whether the bucket is reachable, with the latency and the provider's refusal when not.
    public func validate(_ target: BucketEndpoint, now: Date = Date()) async -> BucketValidationResult {
        let started = ContinuousClock.now
        func elapsed() -> Int {
            let duration = ContinuousClock.now - started
            return Int(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
        }
        // GCS service accounts (client email + PEM private key) talk OAuth2, not HMAC.
        if target.storageType == .gcs, target.endpoint.map(\.isEmpty) ?? true, let key = target.key {
            if GCSServiceAccount.matches(key: key, secret: target.secret), let pem = target.secret {
                return await validateServiceAccount(target, email: key, privateKeyPEM: pem, now: now, elapsed: elapsed)
            }
            if GCSServiceAccount.isDelegated(key: key, secret: target.secret) {
                return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: "delegated GCS access (a client email without a "
                    + "private key) needs an operator identity allowed to impersonate \(key); this collector has none configured")
            }
        }
        var target = target
        var sessionToken: String?
        // Delegated S3 access: assume the organization's role first, then sign with its keys.
        if target.storageType == .s3, let key = target.key, RoleARN.matches(key) {
            guard let sts else {
                return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: "delegated access (a role ARN as key) needs the "
                    + "collector's own AWS identity: set FLASHBACK_AWS_ACCESS_KEY_ID and FLASHBACK_AWS_SECRET_ACCESS_KEY")
            }
            do {
                let credentials = try await assumeRole(key, externalID: target.secret ?? "", sts: sts, now: now)
                target.key = credentials.accessKeyID
                target.secret = credentials.secretAccessKey
                sessionToken = credentials.sessionToken
            } catch {
                return BucketValidationResult(status: "OFFLINE", latencyMs: elapsed(), message: error.message)
            }
        }
        let request: HTTPClientRequest
        do {
            request = try makeRequest(target, sessionToken: sessionToken, now: now)
        } catch let error as ValidationSetupError {
            return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: error.message)
        } catch {
            return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: "\(error)")
        }
        guard let url = URL(string: request.url) else {
            return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: "endpoint is not a URL")
        }
        do {
            try await policy.check(url)
        } catch {
            return BucketValidationResult(status: "OFFLINE", latencyMs: 0, message: error.message)
        }
        do {
            let response = try await client.execute(request, timeout: timeout)
            let body = try await response.body.collect(upTo: 64 * 1024)
            let latency = elapsed()
            let code = Int(response.status.code)
            if (200..<300).contains(code) {
                return BucketValidationResult(status: "ONLINE", latencyMs: latency, message: "bucket \(target.bucket) is reachable (\(code))")
            }
            let providerCode = Self.errorCode(in: String(buffer: body)) ?? response.headers.first(name: "x-ms-error-code").flatMap { $0.count <= 64 ? $0 : nil }
            let detail = providerCode.map { " \($0)" } ?? ""
            let message: String
            switch code {
            case 403: message = "access denied by the provider (403\(detail)): check the access key and secret"
            case 404: message = "bucket \(target.bucket) not found (404\(detail))"
            case 301, 307:
                message = "wrong region or endpoint for bucket \(target.bucket) (\(code)\(detail))"
            case 400 where providerCode == "AuthorizationHeaderMalformed" || providerCode == "PermanentRedirect":
                message = "wrong region or endpoint for bucket \(target.bucket) (\(code)\(detail))"
            default: message = "the provider answered \(code)\(detail)"
            }
            return BucketValidationResult(status: "OFFLINE", latencyMs: latency, message: message)
        } catch {
            return BucketValidationResult(status: "OFFLINE", latencyMs: elapsed(), message: Self.describe(error, host: request.url))
        }
    }

    struct ValidationSetupError: Error {
        let message: String
    }

    func makeRequest(_ target: BucketEndpoint, sessionToken: String? = nil, now: Date) throws -> HTTPClientRequest {
        guard let key = target.key, !key.isEmpty, let secret = target.secret, !secret.isEmpty else {
            throw ValidationSetupError(message: "no credentials: set key and secret to validate the bucket")
        }
        switch target.storageType {
        case .s3, .gcs:
            let region = target.region ?? (target.storageType == .gcs ? "auto" : "us-east-1")
            let base: String
            let path: String
            if let endpoint = target.endpoint, !endpoint.isEmpty {
                // Compatible services: path-style addressing.
                base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
                path = "/" + SigV4.uriEncode(target.bucket, keepSlash: false)
            } else if target.storageType == .gcs {
                base = "https://storage.googleapis.com"
                path = "/" + SigV4.uriEncode(target.bucket, keepSlash: false)
            } else {
                base = "https://\(target.bucket).s3.\(region).amazonaws.com"
                path = "/"
            }
            guard let url = URL(string: base), let host = url.host else {
                throw ValidationSetupError(message: "endpoint \(base) is not a URL")
            }
            let hostHeader = Self.authority(host: host, port: url.port)
            let basePath = url.path.hasSuffix("/") ? String(url.path.dropLast()) : url.path
            var signed = SigV4.Request(method: "GET", path: basePath + path, query: "list-type=2&max-keys=1", headers: [(name: "host", value: hostHeader)])
            // Temporary credentials sign their session token too.
            if let sessionToken { signed.headers.append((name: "x-amz-security-token", value: sessionToken)) }
            SigV4.sign(&signed, accessKeyID: key, secret: secret, region: region, date: now)
            var request = HTTPClientRequest(url: "\(url.scheme ?? "https")://\(hostHeader)\(signed.path)?\(signed.query)")
            request.method = .GET
            for header in signed.headers where header.name != "host" { request.headers.add(name: header.name, value: header.value) }
            return request
        case .blob:
            let base = target.endpoint.flatMap { $0.isEmpty ? nil : $0 } ?? "https://\(key).blob.core.windows.net"
            guard let url = URL(string: base.hasSuffix("/") ? String(base.dropLast()) : base), let host = url.host else {
                throw ValidationSetupError(message: "endpoint \(base) is not a URL")
            }
            let path = url.path + "/" + SigV4.uriEncode(target.bucket, keepSlash: false)
            let date = Self.rfc1123(now)
            let headers = [("x-ms-date", date), ("x-ms-version", AzureSharedKey.version)]
            guard let authorization = AzureSharedKey.authorization(
                method: "HEAD", account: key, accountKey: secret, path: path, query: [("restype", "container")], headers: headers) else {
                throw ValidationSetupError(message: "the Azure account key (secret) is not Base64")
            }
            let hostHeader = Self.authority(host: host, port: url.port)
            var request = HTTPClientRequest(url: "\(url.scheme ?? "https")://\(hostHeader)\(path)?restype=container")
            request.method = .HEAD
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.headers.add(name: "Authorization", value: authorization)
            return request
        }
    }

    /// `host[:port]` as a URL and a `Host` header write it: IPv6 literals in brackets.
    static func authority(host: String, port: Int?) -> String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        return port.map { "\(bracketed):\($0)" } ?? bracketed
    }

    /// The `<Code>` of an S3 error document.
    static func errorCode(in xml: String) -> String? {
        guard let start = xml.range(of: "<Code>"), let end = xml.range(of: "</Code>", range: start.upperBound..<xml.endIndex) else { return nil }
        let code = String(xml[start.upperBound..<end.lowerBound])
        return code.count <= 64 ? code : nil
    }

    /// Names the failure: DNS, refused connection, TLS, or timeout.
    static func describe(_ error: any Error, host url: String) -> String {
        let text = String(describing: error)
        let lower = text.lowercased()
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return "timed out after 5 s talking to \(url)"
        }
        if lower.contains("timeout") || lower.contains("timedout") { return "timed out after 5 s talking to \(url)" }
        if lower.contains("connection refused") || lower.contains("errno: 111") || lower.contains("connectionrefused") {
            return "connection refused by \(url)"
        }
        if lower.contains("dns") || lower.contains("getaddrinfo") || lower.contains("name or service not known") || lower.contains("unknown host") {
            return "DNS lookup failed for \(url)"
        }
        if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") || lower.contains("handshake") {
            return "TLS handshake with \(url) failed: \(text)"
        }
        return "cannot reach \(url): \(text)"
    }

    static func rfc1123(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }
}

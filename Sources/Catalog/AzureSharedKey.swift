import Crypto
import Foundation

/// Azure Storage Shared Key authorization (Blob service), for Get Container Properties.
public enum AzureSharedKey {
    /// The service version the collector speaks.
    public static let version = "2021-08-06"

    /// The `Authorization` header value for a request.
    /// - Parameters:
    ///   - account: the storage account name.
    ///   - accountKey: the account key as Azure shows it (Base64).
    ///   - path: the URL path as sent, e.g. `/container` (or `/account/container` for path-style endpoints).
    ///   - query: decoded query parameters.
    ///   - headers: every header sent (the `x-ms-*` ones are canonicalised).
    /// - Returns: `nil` when the account key is not Base64.
    public static func authorization(
        method: String, account: String, accountKey: String, path: String,
        query: [(String, String)], headers: [(String, String)]
    ) -> String? {
        guard let key = Data(base64Encoded: accountKey) else { return nil }
        let text = stringToSign(method: method, account: account, path: path, query: query, headers: headers)
        let mac = HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))
        return "SharedKey \(account):\(Data(mac).base64EncodedString())"
    }

    /// The string to sign of the Blob service's Shared Key scheme (version 2015-02-21 and later).
    static func stringToSign(method: String, account: String, path: String, query: [(String, String)], headers: [(String, String)]) -> String {
        func header(_ name: String) -> String {
            headers.first { $0.0.lowercased() == name }?.1 ?? ""
        }
        let contentLength = header("content-length") == "0" ? "" : header("content-length")
        let standard = [
            method.uppercased(), header("content-encoding"), header("content-language"), contentLength,
            header("content-md5"), header("content-type"), header("date"), header("if-modified-since"),
            header("if-match"), header("if-none-match"), header("if-unmodified-since"), header("range"),
        ]
        let msHeaders = headers
            .filter { $0.0.lowercased().hasPrefix("x-ms-") }
            .map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }
            .sorted { $0.0 < $1.0 }
            .map { "\($0.0):\($0.1)" }
        var resource = "/\(account)\(path.isEmpty ? "/" : path)"
        var grouped: [String: [String]] = [:]
        for (name, value) in query { grouped[name.lowercased(), default: []].append(value) }
        for name in grouped.keys.sorted() {
            resource += "\n\(name):\((grouped[name] ?? []).sorted().joined(separator: ","))"
        }
        return (standard + msHeaders + [resource]).joined(separator: "\n")
    }
}

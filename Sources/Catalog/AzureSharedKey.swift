import Crypto
import Foundation

/// Azure Storage Shared Key authorization (Blob service), for Get Container Properties.
///
/// The string to sign follows Microsoft's "Authorize with Shared Key" page for version
/// 2015-02-21 and later; the tests check it against that page's examples and against the
/// signing policy of Microsoft's Python SDK (`azure-storage-blob`).
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

    /// The string to sign: the verb, eleven standard headers (`Content-Length` empty when zero),
    /// the canonicalized `x-ms-` headers and the canonicalized resource.
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
        return (standard + canonicalizedHeaders(headers) + [canonicalizedResource(account: account, path: path, query: query)])
            .joined(separator: "\n")
    }

    /// `name:value` for each `x-ms-` header: names in lower case, in the service's order, values
    /// with linear whitespace folded to one space (not inside quoted strings) and trimmed.
    static func canonicalizedHeaders(_ headers: [(String, String)]) -> [String] {
        headers
            .map { (name: $0.0.lowercased(), value: $0.1) }
            .filter { $0.name.hasPrefix("x-ms-") }
            .sorted { serviceOrder($0.name, $1.name) }
            .map { "\($0.name):\(foldWhitespace($0.value))" }
    }

    /// `/account/path`, then `name:value` per query parameter: names in lower case and sorted,
    /// the values of a repeated parameter sorted and joined with commas.
    static func canonicalizedResource(account: String, path: String, query: [(String, String)]) -> String {
        var resource = "/\(account)\(path.isEmpty ? "/" : path)"
        var grouped: [String: [String]] = [:]
        for (name, value) in query { grouped[name.lowercased(), default: []].append(value) }
        for name in grouped.keys.sorted() {
            resource += "\n\(name):\((grouped[name] ?? []).sorted().joined(separator: ","))"
        }
        return resource
    }

    /// The order in which the service sorts header names: as if without hyphens first; between
    /// names that differ only in hyphens, the one whose first differing hyphen comes later (or
    /// that has none there) first. Exact for names of lower-case letters, digits and hyphens,
    /// which is every `x-ms-` header Azure defines; other characters compare by code point.
    static func serviceOrder(_ lhs: String, _ rhs: String) -> Bool {
        let (lhsLetters, rhsLetters) = (lhs.utf8.filter { $0 != UInt8(ascii: "-") }, rhs.utf8.filter { $0 != UInt8(ascii: "-") })
        if lhsLetters != rhsLetters { return lhsLetters.lexicographicallyPrecedes(rhsLetters) }
        func hyphens(_ name: String) -> [Int] { name.utf8.enumerated().compactMap { $0.element == UInt8(ascii: "-") ? $0.offset : nil } }
        let (lhsHyphens, rhsHyphens) = (hyphens(lhs), hyphens(rhs))
        for index in 0..<max(lhsHyphens.count, rhsHyphens.count) {
            let left = index < lhsHyphens.count ? lhsHyphens[index] : Int.max
            let right = index < rhsHyphens.count ? rhsHyphens[index] : Int.max
            if left != right { return left > right }
        }
        return false
    }

    /// Runs of spaces, tabs, CR and LF become one space, except inside a quoted string; the ends trimmed.
    static func foldWhitespace(_ value: String) -> String {
        var folded = ""
        var quoted = false
        var pendingSpace = false
        for character in value {
            if !quoted, character == " " || character == "\t" || character == "\r\n" || character == "\r" || character == "\n" {
                pendingSpace = !folded.isEmpty
                continue
            }
            if pendingSpace { folded.append(" "); pendingSpace = false }
            if character == "\"" { quoted.toggle() }
            folded.append(character)
        }
        return folded
    }
}

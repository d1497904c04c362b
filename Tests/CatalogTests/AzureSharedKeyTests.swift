@testable import Catalog
import CollectorTesting
import FlashbackWire
import Foundation
import NIOCore
import Testing

/// Azure Blob Shared Key. No Azure Storage emulator installs from Debian or PyPI (Azurite is an
/// npm package), so the string to sign is checked against the examples of Microsoft's "Authorize
/// with Shared Key" page, the signature against Microsoft's Python SDK (`azure-storage-blob`),
/// and the bucket check against an endpoint that verifies signatures with that SDK.
@Suite struct AzureSharedKeyTests {
    let directory = TemporaryDirectory(prefix: "azure")

    /// The page's worked example: Get Container Metadata with a timeout, path-style.
    @Test func stringToSignMatchesThePagesExample() {
        let text = AzureSharedKey.stringToSign(
            method: "GET", account: "myaccount", path: "/myaccount/mycontainer",
            query: [("restype", "container"), ("comp", "metadata"), ("timeout", "20")],
            headers: [("x-ms-date", "Sun, 11 Oct 2009 21:49:13 GMT"), ("x-ms-version", "2009-09-19")])
        #expect(text == "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Sun, 11 Oct 2009 21:49:13 GMT\nx-ms-version:2009-09-19\n/myaccount/myaccount/mycontainer\ncomp:metadata\nrestype:container\ntimeout:20")
    }

    /// The page's canonicalized-resource examples: query names sorted, a repeated parameter's
    /// values sorted and joined with commas.
    @Test func canonicalizedResourceMatchesThePagesExamples() {
        #expect(AzureSharedKey.canonicalizedResource(account: "myaccount", path: "/mycontainer", query: [("restype", "container"), ("comp", "metadata")])
            == "/myaccount/mycontainer\ncomp:metadata\nrestype:container")
        #expect(AzureSharedKey.canonicalizedResource(
            account: "myaccount", path: "/mycontainer",
            query: [("restype", "container"), ("comp", "list"), ("include", "snapshots"), ("include", "metadata"), ("include", "uncommittedblobs")])
            == "/myaccount/mycontainer\ncomp:list\ninclude:metadata,snapshots,uncommittedblobs\nrestype:container")
        #expect(AzureSharedKey.canonicalizedResource(account: "myaccount", path: "/mymessages", query: [("numofmessages", "32")])
            == "/myaccount/mymessages\nnumofmessages:32")
        #expect(AzureSharedKey.canonicalizedResource(account: "myaccount", path: "", query: [("COMP", "list")]) == "/myaccount/\ncomp:list")
    }

    /// The page's header rules: names in lower case, linear whitespace in values folded (not
    /// inside quotes), Content-Length empty when zero, only `x-ms-` headers canonicalized.
    @Test func headerRulesFollowThePage() {
        #expect(AzureSharedKey.canonicalizedHeaders([("X-MS-Meta-Name", "  a \t b\r\n c "), ("x-ms-meta-q", "\"x  y\"  z"), ("Content-Type", "text/plain")])
            == ["x-ms-meta-name:a b c", "x-ms-meta-q:\"x  y\" z"])
        let empty = AzureSharedKey.stringToSign(method: "put", account: "a", path: "/c", query: [], headers: [("Content-Length", "0")])
        let eleven = AzureSharedKey.stringToSign(method: "PUT", account: "a", path: "/c", query: [], headers: [("Content-Length", "11")])
        #expect(empty == "PUT\n\n\n\n\n\n\n\n\n\n\n\n/a/c")
        #expect(eleven == "PUT\n\n\n11\n\n\n\n\n\n\n\n\n/a/c")
    }

    /// The service sorts header names as if without hyphens first; the rule agrees with the SDK's
    /// emulation of the service's collation, which plain code-point order does not.
    @Test func headerNamesSortInTheServicesOrder() {
        let names = ["x-ms-blob-type", "x-ms-blobtype", "x-ms-blob-content-type", "x-ms-meta-a-b", "x-ms-meta-ab", "x-ms-meta-ab-", "x-ms-meta--ab", "x-ms-meta-a1", "x-ms-date"]
        #expect(names.sorted(by: AzureSharedKey.serviceOrder) == [
            "x-ms-blob-content-type", "x-ms-blobtype", "x-ms-blob-type", "x-ms-date", "x-ms-meta-a1",
            "x-ms-meta-ab", "x-ms-meta-ab-", "x-ms-meta-a-b", "x-ms-meta--ab",
        ])
    }

    /// The same Authorization header as Microsoft's SDK for a spread of requests.
    @Test func signaturesMatchMicrosoftsSDK() async throws {
        let key = Data((0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }).base64EncodedString()
        let date = "Tue, 01 Dec 2026 06:30:00 GMT"
        struct Case { var method: String; var path: String; var query: [(String, String)]; var headers: [(String, String)] }
        let cases = [
            Case(method: "HEAD", path: "/flashback-blobs", query: [("restype", "container")],
                 headers: [("x-ms-date", date), ("x-ms-version", AzureSharedKey.version)]),
            Case(method: "GET", path: "/devstoreaccount1/photos", query: [("restype", "container"), ("comp", "list"), ("prefix", "a b/ü")],
                 headers: [("x-ms-date", date), ("x-ms-version", AzureSharedKey.version), ("x-ms-client-request-id", "42")]),
            Case(method: "PUT", path: "/photos/cat%20picture.jpg", query: [("timeout", "20")],
                 headers: [("Content-Length", "11"), ("Content-Type", "image/jpeg"), ("Content-MD5", "sQqNsWTgdUEFt6mb5y4/5Q=="),
                           ("x-ms-blob-type", "BlockBlob"), ("x-ms-blobtype", "x"), ("x-ms-meta-a-b", "1"), ("x-ms-meta-ab", "2"),
                           ("x-ms-meta-ab-", "3"), ("x-ms-date", date), ("x-ms-version", AzureSharedKey.version)]),
            Case(method: "DELETE", path: "/photos/old.jpg", query: [],
                 headers: [("Content-Length", "0"), ("If-Match", "\"0x8D\""), ("x-ms-date", date), ("x-ms-version", AzureSharedKey.version)]),
        ]
        let requests = cases.map { item in
            let query = item.query.map { "\($0.0)=\(SigV4.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
            return AzureBlobEndpoint.SigningRequest(
                method: item.method, url: "https://flashbacktest.blob.core.windows.net\(item.path)\(query.isEmpty ? "" : "?" + query)",
                headers: item.headers, account: "flashbacktest", key: key)
        }
        let sdk = try await AzureBlobEndpoint.sdkAuthorizations(requests, directory: directory.path)
        try #require(sdk.count == cases.count)
        for (item, expected) in zip(cases, sdk) {
            let ours = AzureSharedKey.authorization(method: item.method, account: "flashbacktest", accountKey: key, path: item.path, query: item.query, headers: item.headers)
            #expect(ours == expected, "\(item.method) \(item.path)")
        }
    }

    /// The bucket check (Get Container Properties) against an endpoint that verifies each
    /// signature with the SDK: the right key passes, a wrong key is the provider's 403, another
    /// container its 404; a path-style endpoint (as the emulators address an account) works too.
    @Test func bucketCheckPassesAnEndpointThatVerifiesWithTheSDK() async throws {
        let azure = try await AzureBlobEndpoint(directory: directory.path)
        let validator = BucketValidator(timeout: .seconds(5), policy: .allowAll)
        func target(container: String = azure.container, secret: String? = azure.accountKey, endpoint: String? = azure.url) -> BucketEndpoint {
            BucketEndpoint(storageType: .blob, bucket: container, key: azure.account, secret: secret, endpoint: endpoint, region: nil)
        }
        let ok = await validator.validate(target())
        #expect(ok.status == "ONLINE", "\(ok.message)")
        #expect(azure.decisions().last?["found"] as? Bool == true)
        let pathStyle = await validator.validate(target(endpoint: "\(azure.url)/\(azure.account)"))
        #expect(pathStyle.status == "ONLINE", "\(pathStyle.message)")
        let wrongKey = Data(repeating: 9, count: 64).base64EncodedString()
        let refused = await validator.validate(target(secret: wrongKey))
        #expect(refused.status == "OFFLINE" && refused.message.contains("403") && refused.message.contains("AuthenticationFailed"), "\(refused.message)")
        #expect(azure.decisions().last?["problem"] as? String == "signature does not match")
        let missing = await validator.validate(target(container: "no-such-container"))
        #expect(missing.status == "OFFLINE" && missing.message.contains("not found") && missing.message.contains("ContainerNotFound"), "\(missing.message)")
        let notBase64 = await validator.validate(target(secret: "not base64!"))
        #expect(notBase64.status == "OFFLINE" && notBase64.message.contains("not Base64"), "\(notBase64.message)")
        #expect(azure.decisions().count == 4, "the key that is not Base64 never leaves the collector")
    }
}

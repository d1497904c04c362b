import Catalog
import CollectorAuth
import CollectorHTTP
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Registry
import Testing
import TimeSeries

/// Keeps `docs/openapi.json` (written by scripts/openapi.py) true to the router.
@Suite("OpenAPI document")
struct OpenAPIDocumentTests {
    let directory = TemporaryDirectory(prefix: "openapi")

    static let documentURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.json")

    func withRouter(_ body: (Router<CollectorRequestContext>) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.path, extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: .init(size: .bits256)))
        let registry = try NodeRegistry(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let catalog = try StorageCatalog(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: Array(repeating: 7, count: 32)))
        let readiness = ServiceReadiness()
        try await body(CollectorApplication.makeRouter(.init(storage: storage, tokens: tokens, registry: registry, catalog: catalog,
                                                             timeSeries: try TimeSeriesStore(database: storage.database), readiness: readiness, version: "test",
                                                             admin: (token: "admin-token-of-the-test", checkpoints: Checkpoints(storage: storage, secrets: [])))))
    }

    static func document() throws -> [String: Any] {
        let data = try Data(contentsOf: documentURL)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// `/bucket/:bucketId` and `/bucket/{bucketId}` are the same template.
    static func template(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
        }.joined(separator: "/")
    }

    @Test func everyRouteHasAnOperationAndEveryOperationARoute() async throws {
        let paths = try #require(try Self.document()["paths"] as? [String: [String: Any]])
        var documented: Set<String> = []
        for (path, item) in paths {
            for method in item.keys where ["get", "put", "post", "delete", "head", "patch", "options"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        try await withRouter { router in
            let routed = Set(router.routes.map { "\($0.method.rawValue) \(Self.template("\($0.path)"))" })
            #expect(routed.subtracting(documented).sorted() == [], "routes without an OpenAPI operation: run python3 scripts/openapi.py after adding them there")
            #expect(documented.subtracting(routed).sorted() == [], "operations without a route")
            #expect(routed.count >= 55)
        }
    }

    @Test func theServedDocumentIsTheOneInDocs() async throws {
        let file = try String(contentsOf: Self.documentURL, encoding: .utf8)
        try await withRouter { router in
            try await Application(router: router).test(.router) { client in
                let response = try await client.execute(uri: "/openapi.json", method: .get)
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                #expect(String(buffer: response.body).trimmingCharacters(in: .newlines) == file.trimmingCharacters(in: .newlines))
            }
        }
        let document = try Self.document()
        #expect(document["openapi"] as? String == "3.1.0")
    }
}

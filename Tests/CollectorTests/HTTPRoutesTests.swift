import Catalog
import CollectorAuth
import CollectorHTTP
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Ingestion
import HummingbirdTesting
import Logging
import NIOCore
import Registry
import Testing
import TimeSeries

/// Routes exercised in-process through HummingbirdTesting, on a real temporary RocksDB store.
@Suite("HTTP routes in-process")
struct HTTPRoutesTests {
    let directory = TemporaryDirectory(prefix: "http")

    struct Harness {
        let storage: CollectorStorage
        let tokens: TokenAuthority
        let readiness: ServiceReadiness
        let application: Application<RouterResponder<CollectorRequestContext>>
    }

    func withHarness(_ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.path, extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let readiness = ServiceReadiness()
        let registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: .init(size: .bits256))), logger: Logger(label: "test"))
        let catalog = try StorageCatalog(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: .init(size: .bits256))), logger: Logger(label: "test"))
        let router = CollectorApplication.makeRouter(.init(storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: try TimeSeriesStore(database: storage.database), readiness: readiness, version: "test"))
        let application = Application(router: router)
        let harness = Harness(storage: storage, tokens: tokens, readiness: readiness, application: application)
        try await application.test(.router) { client in try await body(harness, client) }
    }

    struct ErrorBody: Decodable {
        let success: Bool
        let message: String
    }

    struct WhoAmI: Decodable {
        let success: Bool
        let organization: String
        let user: String
        let role: Int
        let roleName: String
        let workspaces: [String]
    }

    static func expectFlashbackError(_ response: TestResponse, status: HTTPResponse.Status, containing text: String) throws {
        #expect(response.status == status)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        let body = try JSONDecoder().decode(ErrorBody.self, from: Data(String(buffer: response.body).utf8))
        #expect(body.success == false)
        #expect(body.message.contains(text), "message was: \(body.message)")
    }

    @Test func whoamiAnswersTheTokensCaller() async throws {
        try await withHarness { harness, client in
            let token = try await harness.tokens.mint(for: TokenAuthorityTests.alice, lifetime: 600)
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
                let body = try JSONDecoder().decode(WhoAmI.self, from: Data(String(buffer: response.body).utf8))
                #expect(body.success)
                #expect(body.organization == "org-1")
                #expect(body.user == "alice")
                #expect(body.role == 255)
                #expect(body.roleName == "OWNER")
                #expect(body.workspaces == ["ws-a", "ws-b"])
            }
        }
    }

    @Test func missingMalformedExpiredAndForeignTokensGet401() async throws {
        try await withHarness { harness, client in
            try await client.execute(uri: "/whoami", method: .get) { response in
                try Self.expectFlashbackError(response, status: .unauthorized, containing: "missing")
                #expect(response.headers[.wwwAuthenticate] == "Bearer")
            }
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Basic dXNlcjpwYXNz"]) { response in
                try Self.expectFlashbackError(response, status: .unauthorized, containing: "missing")
            }
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer abc.def"]) { response in
                try Self.expectFlashbackError(response, status: .unauthorized, containing: "malformed")
            }
            let expired = try await harness.tokens.mint(for: TokenAuthorityTests.alice, lifetime: 60, now: Date(timeIntervalSinceNow: -7200))
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(expired)"]) { response in
                try Self.expectFlashbackError(response, status: .unauthorized, containing: "expired")
            }
            let foreign = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: Array("some-other-secret-0123456789-abcdef".utf8)))
                .mint(for: TokenAuthorityTests.alice, lifetime: 600)
            try await client.execute(uri: "/whoami", method: .get, headers: [.authorization: "Bearer \(foreign)"]) { response in
                try Self.expectFlashbackError(response, status: .unauthorized, containing: "signature")
            }
        }
    }

    @Test func readinessFollowsComponentsAndShutdown() async throws {
        try await withHarness { harness, client in
            try await client.execute(uri: "/-/ready", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/-/healthy", method: .get) { #expect($0.status == .ok) }
            harness.readiness.markUp(.storage)
            harness.readiness.markUp(.http)
            try await client.execute(uri: "/-/ready", method: .get) { #expect($0.status == .serviceUnavailable) }
            harness.readiness.markUp(.udp)
            try await client.execute(uri: "/-/ready", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/health", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body).contains(#""status":"ok""#))
            }
            harness.readiness.markStopping()
            try await client.execute(uri: "/-/ready", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("shutting down"))
            }
            try await client.execute(uri: "/health", method: .get) { #expect($0.status == .serviceUnavailable) }
        }
    }

    @Test func unknownRoutesAnswerInTheFlashbackShape() async throws {
        try await withHarness { _, client in
            try await client.execute(uri: "/no/such/route", method: .get) { response in
                try Self.expectFlashbackError(response, status: .notFound, containing: "not found: GET /no/such/route")
            }
        }
    }
}

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test func parsesHostPortForms() {
        #expect(ListenAddress(parsing: "127.0.0.1:8080") == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(ListenAddress(parsing: "[::1]:9000") == ListenAddress(host: "::1", port: 9000))
        #expect(ListenAddress(parsing: ":8089") == ListenAddress(host: "0.0.0.0", port: 8089))
        #expect(ListenAddress(parsing: "localhost:0")?.isLoopback == true)
        #expect(ListenAddress(parsing: "0.0.0.0:80")?.isLoopback == false)
        #expect(ListenAddress(parsing: "8080") == nil)
        #expect(ListenAddress(parsing: "host:99999") == nil)
        #expect(ListenAddress(parsing: "::1:80") == nil)
        #expect(ListenAddress(host: "::1", port: 1).description == "[::1]:1")
    }
}

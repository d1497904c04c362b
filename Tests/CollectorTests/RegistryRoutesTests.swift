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
import HummingbirdTesting
import Logging
import NIOCore
import Registry
import Testing
import TimeSeries

/// Organization keys, registration and the node directory over HTTP (in-process), with real
/// `openssl` signatures and a real RocksDB.
@Suite("Registry routes")
struct RegistryRoutesTests {
    let directory = TemporaryDirectory(prefix: "registry-http")

    struct Harness: Sendable {
        let tokens: TokenAuthority
        let registry: NodeRegistry
        let directory: String

        func bearer(_ organization: String, _ role: OrganizationRole, user: String = "u") async throws -> HTTPFields {
            let token = try await tokens.mint(for: CallerIdentity(organization: organization, user: user, role: role), lifetime: 600)
            return [.authorization: "Bearer \(token)"]
        }
    }

    func withHarness(_ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256))), logger: Logger(label: "test"))
        let catalog = try StorageCatalog(storage: storage, secrets: SecretBox(masterKey: MasterKey(key: .init(size: .bits256))), logger: Logger(label: "test"))
        let router = CollectorApplication.makeRouter(.init(storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: try TimeSeriesStore(database: storage.database), readiness: ServiceReadiness(), version: "test"))
        let harness = Harness(tokens: tokens, registry: registry, directory: directory.path)
        try await Application(router: router).test(.router) { client in try await body(harness, client) }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any])
    }

    static func expectError(_ response: TestResponse, _ status: HTTPResponse.Status, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(response.status == status, sourceLocation: sourceLocation)
        #expect(response.headers[.contentType]?.hasPrefix("application/json") == true, sourceLocation: sourceLocation)
        let body = try json(response)
        #expect(body["success"] as? Bool == false, sourceLocation: sourceLocation)
        let message = body["message"] as? String ?? ""
        #expect(message.contains(text), "message: \(message)", sourceLocation: sourceLocation)
    }

    /// Creates a key over HTTP and returns an `openssl` signer for it.
    static func createKey(_ client: any TestClientProtocol, _ harness: Harness, org: String = "org-a") async throws -> OpenSSLSigner {
        let response = try await client.execute(uri: "/organization/\(org)/key", method: .post, headers: try await harness.bearer(org, .owner))
        #expect(response.status == .ok)
        let pem = try JSONDecoder().decode(String.self, from: Data(String(buffer: response.body).utf8))
        return try OpenSSLSigner(privateKeyPEM: pem, directory: harness.directory)
    }

    static func registerBody(_ signer: OpenSSLSigner, ip: String = "203.0.113.10", region: String = "eu-central-1", org: String = "org-a") async throws -> String {
        let timestamp = Int64(Date().timeIntervalSince1970)
        let signature = try await signer.signNodeMessage(ip: ip, region: region, timestamp: String(timestamp))
        return #"{"provider":"AWS","region":"\#(region)","ip":"\#(ip)","status":"running","version":"0.0.28","timestamp":\#(timestamp),"signature":"\#(signature)","id_org":"\#(org)"}"#
    }

    @Test func keyLifecycleAndRegistrationOverHTTP() async throws {
        try await withHarness { harness, client in
            let signer = try await Self.createKey(client, harness)
            let owner = try await harness.bearer("org-a", .owner)

            // Raw PEM when asked for it.
            var pemHeaders = try await harness.bearer("org-a", .administrators)
            pemHeaders[.accept] = "application/x-pem-file"
            let raw = try await client.execute(uri: "/organization/org-a/key", method: .post, headers: pemHeaders)
            #expect(raw.status == .ok)
            #expect(raw.headers[.contentType] == "application/x-pem-file")
            #expect(String(buffer: raw.body).hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))

            let register = try await client.execute(uri: "/register", method: .post, headers: [.contentType: "application/json"],
                                                    body: ByteBuffer(string: try await Self.registerBody(signer)))
            #expect(register.status == .ok)
            let registered = try Self.json(register)
            #expect(registered["success"] as? Bool == true)
            let token = try #require(registered["nodeToken"] as? String)
            let nodeID = try #require(registered["nodeId"] as? String)
            #expect(harness.registry.authenticate(nodeToken: token)?.id == nodeID)

            let keys = try Self.json(try await client.execute(uri: "/organization/org-a/key", method: .get, headers: owner))
            let data = try #require(keys["data"] as? [[String: Any]])
            #expect(data.count == 2)
            let links = data.flatMap { ($0["nodeKeys"] as? [[String: Any]]) ?? [] }
            #expect(links.count == 1)
            #expect(links.first?["nodeId"] as? String == "203.0.113.10")
            #expect((data.first?["publicKey"] as? String)?.hasPrefix("-----BEGIN PUBLIC KEY-----") == true)

            let nodes = try Self.json(try await client.execute(uri: "/organization/org-a/nodes", method: .get, headers: try await harness.bearer("org-a", .user)))
            #expect(nodes["total"] as? Int == 1)
            let node = try #require((nodes["data"] as? [[String: Any]])?.first)
            #expect(node["id"] as? String == nodeID)
            #expect(node["status"] as? String == "ONLINE")
            #expect(node["id_org"] as? String == "org-a")
            #expect(node["nodeServices"] as? Int == 1)
            #expect(node["url"] as? String == "https://203.0.113.10")
            #expect((node["lastUpdated"] as? String)?.hasSuffix("Z") == true)

            // Private nodes are not in the anonymous directory, but are for their organization.
            let anonymous = try Self.json(try await client.execute(uri: "/node?nodeServices=0", method: .get))
            #expect(anonymous["total"] as? Int == 0)
            let mine = try Self.json(try await client.execute(uri: "/node?nodeServices=1", method: .get, headers: owner))
            #expect(mine["total"] as? Int == 1)

            let deleted = try await client.execute(uri: "/organization/org-a/node/\(nodeID)", method: .delete, headers: owner)
            #expect(deleted.status == .ok)
            try Self.expectError(try await client.execute(uri: "/organization/org-a/node/\(nodeID)", method: .delete, headers: owner), .badRequest, "already deleted")
            try Self.expectError(try await client.execute(uri: "/organization/org-a/node/unknown", method: .delete, headers: owner), .notFound, "not found")

            let all = try Self.json(try await client.execute(uri: "/organization/org-a/key", method: .delete, headers: owner))
            #expect(all["message"] as? String == "Successfully deleted 2 organization key(s)")
        }
    }

    @Test func roleAndOrganizationMatrix() async throws {
        try await withHarness { harness, client in
            let signer = try await Self.createKey(client, harness)
            let register = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await Self.registerBody(signer)))
            let nodeID = try #require(try Self.json(register)["nodeId"] as? String)
            let keyID = try #require(harness.registry.keys(organization: "org-a").first?.key.id)

            let ownerOfA = try await harness.bearer("org-a", .owner)
            let userOfA = try await harness.bearer("org-a", .user)
            let ownerOfB = try await harness.bearer("org-b", .owner)

            // (method, path, admin only)
            let endpoints: [(HTTPRequest.Method, String, Bool)] = [
                (.get, "/organization/org-a/key", true),
                (.post, "/organization/org-a/key", true),
                (.get, "/organization/org-a/nodes", false),
                (.delete, "/organization/org-a/key/\(keyID)", true),
                (.delete, "/organization/org-a/node/\(nodeID)", true),
                (.delete, "/organization/org-a/key", true),
            ]
            for (method, path, adminOnly) in endpoints {
                let foreign = try await client.execute(uri: path, method: method, headers: ownerOfB)
                try Self.expectError(foreign, .forbidden, "Access denied")
                #expect(!String(buffer: foreign.body).contains("BEGIN"), "\(path) leaked key material")
                #expect(!String(buffer: foreign.body).contains("203.0.113.10"), "\(path) leaked a node")
                let user = try await client.execute(uri: path, method: method, headers: userOfA)
                if adminOnly {
                    try Self.expectError(user, .forbidden, "Insufficient permissions")
                } else {
                    #expect(user.status == .ok, "\(path) for a USER of the organization")
                }
                let anonymous = try await client.execute(uri: path, method: method)
                try Self.expectError(anonymous, .unauthorized, "missing bearer token")
                let owner = try await client.execute(uri: path, method: method, headers: ownerOfA)
                #expect(owner.status == .ok, "\(path) for the OWNER: \(String(buffer: owner.body))")
            }
            // Another organization's key id inside the caller's own path is simply not found.
            let otherKey = try await client.execute(uri: "/organization/org-b/key", method: .post, headers: ownerOfB)
            #expect(otherKey.status == .ok)
            let otherKeyID = try #require(harness.registry.keys(organization: "org-b").first?.key.id)
            try Self.expectError(try await client.execute(uri: "/organization/org-a/key/\(otherKeyID)", method: .delete, headers: ownerOfA), .notFound, "not found")
            #expect(harness.registry.keys(organization: "org-b").count == 1)
        }
    }

    @Test func malformedRegistrationsAre400AndChangeNothing() async throws {
        try await withHarness { harness, client in
            let signer = try await Self.createKey(client, harness)
            let good = try await Self.registerBody(signer)
            let bodies: [(String, String)] = [
                ("{not json", "not valid JSON"),
                ("", "empty"),
                (#"{"region":"eu","timestamp":1,"signature":"x","status":"s","version":"v"}"#, "missing field ip"),
                (good.replacingOccurrences(of: #""ip":"203.0.113.10""#, with: #""ip":42"#), "field ip has the wrong type"),
                (good.replacingOccurrences(of: #""timestamp":"#, with: #""timestamp":"yesterday","x":"#), "timestamp"),
                (good.replacingOccurrences(of: #""signature":""#, with: #""signature":"@@@"#), "Base64"),
                (good.replacingOccurrences(of: #""region":"eu-central-1""#, with: #""region":"us-east-1""#), "does not verify"),
                (good.replacingOccurrences(of: #""id_org":"org-a""#, with: #""id_org":"org-zzz""#), "has no keys"),
            ]
            for (body, text) in bodies {
                let response = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: body))
                try Self.expectError(response, .badRequest, text)
            }
            #expect(harness.registry.nodes(organization: "org-a").isEmpty)
            // The untouched body still registers (its signature was never consumed).
            let ok = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: good))
            #expect(ok.status == .ok)
            // …and only once.
            try Self.expectError(try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: good)), .badRequest, "replay")
            try Self.expectError(try await client.execute(uri: "/node?nodeServices=abc", method: .get), .badRequest, "nodeServices")
        }
    }

    @Test func unregisterOverHTTP() async throws {
        try await withHarness { harness, client in
            let signer = try await Self.createKey(client, harness)
            #expect(try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await Self.registerBody(signer))).status == .ok)
            let timestamp = Int64(Date().timeIntervalSince1970) + 1
            let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: String(timestamp))
            let body = #"{"ip":"203.0.113.10","timestamp":\#(timestamp),"signature":"\#(signature)","id_org":"org-a"}"#
            let response = try await client.execute(uri: "/unregister", method: .post, body: ByteBuffer(string: body))
            #expect(response.status == .ok, "\(String(buffer: response.body))")
            #expect(harness.registry.nodes(organization: "org-a").isEmpty)
            let unknown = #"{"ip":"198.51.100.99","region":"eu","timestamp":\#(timestamp),"signature":"\#(signature)","id_org":"org-a"}"#
            try Self.expectError(try await client.execute(uri: "/unregister", method: .post, body: ByteBuffer(string: unknown)), .badRequest, "does not verify")
        }
    }
}

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

/// Buckets, repositories, repo API keys and `/apikey/authorize` over HTTP (in-process), against a
/// real RocksDB, a real S3 endpoint (moto with signature checks) and botocore-signed requests.
@Suite("Catalog routes")
struct CatalogRoutesTests {
    let directory = TemporaryDirectory(prefix: "catalog-http")

    struct Harness: Sendable {
        let tokens: TokenAuthority
        let registry: NodeRegistry
        let catalog: StorageCatalog
        let directory: String

        func auth(_ organization: String = "org-a", _ role: OrganizationRole = .owner, workspaces: [String] = []) async throws -> HTTPFields {
            let token = try await tokens.mint(for: CallerIdentity(organization: organization, user: "u", role: role, workspaces: workspaces), lifetime: 600)
            return [.authorization: "Bearer \(token)", .contentType: "application/json"]
        }
    }

    func withHarness(policy: OutboundPolicy = .allowAll, _ body: @escaping @Sendable (Harness, any TestClientProtocol) async throws -> Void) async throws {
        let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), extraFamilies: TimeSeriesStore.columnFamilies(), logger: Logger(label: "test"))
        defer { storage.close() }
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let tokens = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: TokenAuthorityTests.secret))
        let registry = try NodeRegistry(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let catalog = try StorageCatalog(storage: storage, secrets: secrets, logger: Logger(label: "test"))
        let router = CollectorApplication.makeRouter(.init(
            storage: storage, tokens: tokens, registry: registry, catalog: catalog, timeSeries: try TimeSeriesStore(database: storage.database),
            validator: BucketValidator(timeout: .seconds(5), policy: policy), readiness: ServiceReadiness(), version: "test"))
        let harness = Harness(tokens: tokens, registry: registry, catalog: catalog, directory: directory.path)
        try await Application(router: router).test(.router) { client in try await body(harness, client) }
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any], "body: \(String(buffer: response.body))")
    }

    static func post(_ client: any TestClientProtocol, _ uri: String, _ headers: HTTPFields, _ body: String, method: HTTPRequest.Method = .post) async throws -> TestResponse {
        try await client.execute(uri: uri, method: method, headers: headers, body: ByteBuffer(string: body))
    }

    /// Creates a bucket without credentials (no provider round trip) and returns its id.
    static func createBucket(_ client: any TestClientProtocol, _ headers: HTTPFields, name: String, workspace: String = "ws-1") async throws -> String {
        let response = try await post(client, "/bucket", headers, #"{"name":"\#(name)","bucket":"\#(name)-provider","storageType":"S3","workspaceId":"\#(workspace)","region":"us-east-1"}"#)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        return try #require(try json(response)["bucketId"] as? String)
    }

    static func createRepo(_ client: any TestClientProtocol, _ headers: HTTPFields, name: String, mode: String = "NORMAL", links: String) async throws -> TestResponse {
        try await post(client, "/repo", headers, #"{"name":"\#(name)","storageType":"S3","mode":"\#(mode)","workspaceId":"ws-1","repoBuckets":[\#(links)]}"#)
    }

    // MARK: Validation against a real S3 endpoint

    @Test func validationAgainstMotoNamesWhatFailed() async throws {
        let moto = try await MotoServer(logDirectory: directory.path)
        let validator = BucketValidator(timeout: .seconds(5), policy: .allowAll)
        func target(bucket: String = moto.bucket, secret: String = moto.secretAccessKey, endpoint: String = moto.endpoint) -> BucketEndpoint {
            BucketEndpoint(storageType: .s3, bucket: bucket, key: moto.accessKeyID, secret: secret, endpoint: endpoint, region: "us-east-1")
        }
        let ok = await validator.validate(target())
        #expect(ok.status == "ONLINE", "\(ok.message)")
        let wrongSecret = await validator.validate(target(secret: String(repeating: "x", count: 40)))
        #expect(wrongSecret.status == "OFFLINE")
        #expect(wrongSecret.message.contains("403"), "\(wrongSecret.message)")
        #expect(wrongSecret.message.contains("SignatureDoesNotMatch"), "\(wrongSecret.message)")
        let missing = await validator.validate(target(bucket: "no-such-bucket"))
        #expect(missing.message.contains("404") && missing.message.contains("not found"), "\(missing.message)")
        let closed = await validator.validate(target(endpoint: "http://127.0.0.1:\(freeLoopbackPort())"))
        #expect(closed.status == "OFFLINE")
        #expect(closed.message.contains("connection refused"), "\(closed.message)")
        let noCredentials = await validator.validate(BucketEndpoint(storageType: .s3, bucket: "b", key: nil, secret: nil, endpoint: moto.endpoint, region: nil))
        #expect(noCredentials.message.contains("no credentials"))
    }

    /// S3 delegated access: the bucket's key is a role ARN and its secret the external id; the
    /// collector assumes the role through moto's STS (signatures checked) and validates with the
    /// temporary keys and their session token.
    @Test func delegatedAccessAssumesTheRoleThroughSTS() async throws {
        let moto = try await MotoServer(logDirectory: directory.path)
        let sts = STSSettings(endpoint: moto.endpoint, accessKeyID: moto.accessKeyID, secretAccessKey: moto.secretAccessKey)
        let validator = BucketValidator(timeout: .seconds(5), policy: .allowAll, sts: sts)
        func target(role: String = moto.roleARN, externalID: String = "flashback-external-id") -> BucketEndpoint {
            BucketEndpoint(storageType: .s3, bucket: moto.bucket, key: role, secret: externalID, endpoint: moto.endpoint, region: "us-east-1")
        }
        #expect(RoleARN.matches(moto.roleARN), "\(moto.roleARN)")
        let ok = await validator.validate(target())
        #expect(ok.status == "ONLINE", "\(ok.message)")
        // The collector's own identity is what STS checks: a wrong secret is refused there.
        let impostor = BucketValidator(timeout: .seconds(5), policy: .allowAll,
                                       sts: STSSettings(endpoint: moto.endpoint, accessKeyID: moto.accessKeyID, secretAccessKey: String(repeating: "y", count: 40)))
        let refused = await impostor.validate(target())
        #expect(refused.status == "OFFLINE" && refused.message.contains("STS refused"), "\(refused.message)")
        // Without an identity of its own the collector says what to configure.
        let unconfigured = await BucketValidator(timeout: .seconds(5), policy: .allowAll).validate(target())
        #expect(unconfigured.status == "OFFLINE" && unconfigured.message.contains("FLASHBACK_AWS_ACCESS_KEY_ID"), "\(unconfigured.message)")
        for notARole in ["arn:aws:iam::123:role/x", "arn:aws:s3:::bucket", "arn:aws:iam::123456789012:user/u", "AKIAIOSFODNN7EXAMPLE"] {
            #expect(!RoleARN.matches(notARole), "\(notARole)")
        }
    }

    /// GCS "classic" credentials: a service account's client email and PEM private key. The
    /// collector signs an RS256 assertion, a token endpoint that verifies it with the public key
    /// grants a token, and the GCS JSON API (PyPI `gcp-storage-emulator`) answers for the bucket.
    @Test func gcsServiceAccountsTradeASignedAssertionForAToken() async throws {
        let gcs = try await GCSEmulator(directory: directory.path)
        let validator = BucketValidator(timeout: .seconds(5), policy: .allowAll, gcs: GCSEndpoints(tokenURL: gcs.tokenURL, apiURL: gcs.apiURL))
        func target(bucket: String = gcs.bucket, key: String = gcs.clientEmail, secret: String? = gcs.privateKeyPEM) -> BucketEndpoint {
            BucketEndpoint(storageType: .gcs, bucket: bucket, key: key, secret: secret, endpoint: nil, region: nil)
        }
        let ok = await validator.validate(target())
        #expect(ok.status == "ONLINE", "\(ok.message)")
        #expect(gcs.tokenDecisions().last?["granted"] as? Bool == true)
        let missing = await validator.validate(target(bucket: "no-such-bucket"))
        #expect(missing.status == "OFFLINE" && missing.message.contains("not found"), "\(missing.message)")
        // Another key: the token endpoint's signature check refuses the assertion.
        let otherKey = try await GCSEmulator(directory: directory.path).privateKeyPEM
        let wrong = await validator.validate(target(secret: otherKey))
        #expect(wrong.status == "OFFLINE" && wrong.message.contains("refused the service account's token request"), "\(wrong.message)")
        #expect(gcs.tokenDecisions().last?["problem"] as? String == "signature does not verify")
        // Delegated access (an email without a key) is refused with the reason.
        let delegated = await validator.validate(target(secret: nil))
        #expect(delegated.status == "OFFLINE" && delegated.message.contains("delegated GCS access"), "\(delegated.message)")
        let garbage = await validator.validate(target(secret: "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"))
        #expect(garbage.message.contains("not a usable RSA private key"), "\(garbage.message)")
    }

    @Test func bucketLifecycleWithCredentialChecks() async throws {
        let moto = try await MotoServer(logDirectory: directory.path)
        try await withHarness { harness, client in
            let owner = try await harness.auth()
            let good = #"{"name":"Archive","bucket":"\#(moto.bucket)","storageType":"S3","key":"\#(moto.accessKeyID)","secret":"\#(moto.secretAccessKey)","endpoint":"\#(moto.endpoint)","region":"us-east-1","workspaceId":"ws-1"}"#
            let created = try await Self.post(client, "/bucket", owner, good)
            #expect(created.status == .ok, "\(String(buffer: created.body))")
            let body = try Self.json(created)
            #expect(body["status"] as? String == "ONLINE")
            let id = try #require(body["bucketId"] as? String)

            // Wrong secret: 400 naming the provider's answer, and nothing stored.
            let bad = good.replacingOccurrences(of: moto.secretAccessKey, with: String(repeating: "z", count: 40)).replacingOccurrences(of: "Archive", with: "Other")
            let refused = try await Self.post(client, "/bucket", owner, bad)
            #expect(refused.status == .badRequest)
            #expect((try Self.json(refused)["message"] as? String)?.contains("403") == true)
            #expect(harness.catalog.buckets(CatalogScope(organization: "org-a", workspaces: [])).count == 1)

            // The list never shows the secret; `undefined` query values mean absent.
            let list = try await client.execute(uri: "/bucket?workspaceId=undefined&walletAddress=undefined", method: .get, headers: owner)
            let text = String(buffer: list.body)
            #expect(!text.contains(moto.secretAccessKey))
            let buckets = try #require(try Self.json(list)["buckets"] as? [[String: Any]])
            #expect(buckets.count == 1)
            #expect(buckets.first?["storageType"] as? String == "S3")
            #expect(buckets.first?["key"] as? String == moto.accessKeyID)
            #expect(buckets.first?["status"] as? String == "ONLINE")

            let validated = try await Self.post(client, "/bucket/\(id)/validate", owner, "")
            #expect(validated.status == .ok)
            let result = try Self.json(validated)
            #expect(result["status"] as? String == "ONLINE")
            #expect(result["latency_ms"] is Int)
            // The official client names the bucket in every validate: naming the stored one saves
            // the result as the bucket's status; a candidate bucket does not.
            let scopeA = CatalogScope(organization: "org-a", workspaces: [])
            let before = try harness.catalog.bucket(scopeA, id: id).lastStatusAt
            let named = try await Self.post(client, "/bucket/\(id)/validate", owner, #"{"bucket":"\#(moto.bucket)","region":"us-east-1"}"#)
            #expect(named.status == .ok)
            let after = try harness.catalog.bucket(scopeA, id: id).lastStatusAt
            #expect(after != nil && after != before, "the named validate was recorded")
            let candidate = try await Self.post(client, "/bucket/\(id)/validate", owner, #"{"bucket":"missing-bucket"}"#)
            #expect(candidate.status == .badRequest)
            #expect((try Self.json(candidate)["message"] as? String)?.contains("not found") == true)
            #expect(try harness.catalog.bucket(scopeA, id: id).status == "ONLINE", "a candidate's result is not the bucket's status")

            // Partial update: a rename keeps everything else; new wrong credentials are refused.
            let renamed = try await Self.post(client, "/bucket/\(id)", owner, #"{"name":"Archive EU"}"#, method: .put)
            #expect(renamed.status == .ok)
            #expect(try harness.catalog.bucket(CatalogScope(organization: "org-a", workspaces: []), id: id).name == "Archive EU")
            let badUpdate = try await Self.post(client, "/bucket/\(id)", owner, #"{"secret":"\#(String(repeating: "q", count: 40))"}"#, method: .put)
            #expect(badUpdate.status == .badRequest)
            let stillGood = try await Self.post(client, "/bucket/\(id)/validate", owner, "")
            #expect(stillGood.status == .ok)

            #expect(try await client.execute(uri: "/bucket/\(id)", method: .delete, headers: owner).status == .ok)
            #expect(try Self.json(try await client.execute(uri: "/bucket", method: .get, headers: owner))["buckets"] as? [Any] != nil)
            #expect(harness.catalog.buckets(CatalogScope(organization: "org-a", workspaces: [])).isEmpty)
            #expect(try await client.execute(uri: "/bucket/\(id)/validate", method: .post, headers: owner).status == .notFound)
        }
    }

    @Test func badBucketInputIs400AndStoresNothing() async throws {
        try await withHarness { harness, client in
            let owner = try await harness.auth()
            let cases: [(String, String)] = [
                (#"{"name":"a","bucket":"b","storageType":"FTP","workspaceId":"w"}"#, "unknown storageType"),
                (#"{"bucket":"b","storageType":"S3","workspaceId":"w"}"#, "missing field name"),
                (#"{"name":"a","storageType":"S3","workspaceId":"w"}"#, "missing field bucket"),
                (#"{"name":"\#(String(repeating: "n", count: 200))","bucket":"b","storageType":"S3","workspaceId":"w"}"#, "longer than 128"),
                (#"{"name":"a","bucket":"b","storageType":"S3","workspaceId":"w","endpoint":"ftp://x"}"#, "endpoint"),
                ("{oops", "not valid JSON"),
            ]
            for (body, text) in cases {
                let response = try await Self.post(client, "/bucket", owner, body)
                #expect(response.status == .badRequest, "\(body)")
                #expect((try Self.json(response)["message"] as? String)?.contains(text) == true, "\(String(buffer: response.body))")
            }
            #expect(harness.catalog.buckets(CatalogScope(organization: "org-a", workspaces: [])).isEmpty)
            // AZURE is accepted and BLOB emitted.
            let azure = try await Self.post(client, "/bucket", owner, #"{"name":"az","bucket":"container","storageType":"AZURE","workspaceId":"w"}"#)
            #expect(azure.status == .ok)
            #expect(harness.catalog.buckets(CatalogScope(organization: "org-a", workspaces: [])).first?.storageType == .blob)
            let duplicate = try await Self.post(client, "/bucket", owner, #"{"name":"az","bucket":"other","storageType":"S3","workspaceId":"w"}"#)
            #expect(duplicate.status == .badRequest)
        }
    }

    // MARK: Repositories

    @Test func repositoryRulesAndBucketUse() async throws {
        try await withHarness { harness, client in
            let owner = try await harness.auth()
            let b1 = try await Self.createBucket(client, owner, name: "b1")
            let b2 = try await Self.createBucket(client, owner, name: "b2")
            let b3 = try await Self.createBucket(client, owner, name: "b3")

            func code(_ response: TestResponse) throws -> String? { try Self.json(response)["error_code"] as? String }

            let noMaster = try await Self.createRepo(client, owner, name: "m", mode: "MIRROR", links: #"{"folder":"","master":false,"bucketId":"\#(b1)"},{"folder":"","master":false,"bucketId":"\#(b2)"}"#)
            #expect(try code(noMaster) == "MIRROR_MASTER_UNIT_MISSING")
            let twoMasters = try await Self.createRepo(client, owner, name: "m", mode: "MIRROR", links: #"{"folder":"","master":true,"bucketId":"\#(b1)"},{"folder":"","master":true,"bucketId":"\#(b2)"}"#)
            #expect(try code(twoMasters) == "MIRROR_MASTER_UNIT_COUNT_INVALID")
            let mirror = try await Self.createRepo(client, owner, name: "m", mode: "MIRROR", links: #"{"folder":"","master":true,"bucketId":"\#(b1)"},{"folder":"","master":false,"bucketId":"\#(b2)"}"#)
            #expect(mirror.status == .ok)
            let mirrorID = try #require(try Self.json(mirror)["repoId"] as? String)

            let sameName = try await Self.createRepo(client, owner, name: "m", links: #"{"folder":"x","master":false,"bucketId":"\#(b3)"}"#)
            #expect(try code(sameName) == "NAME_ALREADY_USED")
            let stealsMirrored = try await Self.createRepo(client, owner, name: "n", links: #"{"folder":"x","master":false,"bucketId":"\#(b1)"}"#)
            #expect(try code(stealsMirrored) == "MIRROR_UNIT_ALREADY_IN_OTHER_REPO")
            let sameFolder = try await Self.createRepo(client, owner, name: "n", links: #"{"folder":"x","bucketId":"\#(b3)"},{"folder":"x","bucketId":"\#(b3)"}"#)
            #expect(try code(sameFolder) == "NORMAL_UNIT_FOLDER_ALREADY_USED")
            let unknown = try await Self.createRepo(client, owner, name: "n", links: #"{"folder":"x","bucketId":"nope"}"#)
            #expect(try code(unknown) == "NOT_FOUND")
            let normal = try await Self.createRepo(client, owner, name: "n", links: #"{"folder":"x","bucketId":"\#(b3)"}"#)
            #expect(normal.status == .ok)
            let normalID = try #require(try Self.json(normal)["repoId"] as? String)

            // §9 validate: the same rules, nothing saved; with an id, as an update of that repository.
            let validNormal = try await Self.post(client, "/repo/validate", owner, #"{"mode":"NORMAL","repoBuckets":[{"folder":"z","bucketId":"\#(b3)"}]}"#)
            #expect(validNormal.status == .ok, "\(String(buffer: validNormal.body))")
            #expect(try Self.json(validNormal)["success"] as? Bool == true)
            let validateSteal = try await Self.post(client, "/repo/validate", owner, #"{"mode":"NORMAL","repoUnits":[{"folder":"z","unitId":"\#(b1)"}]}"#)
            #expect(try code(validateSteal) == "MIRROR_UNIT_ALREADY_IN_OTHER_REPO")
            let validateDrop = try await Self.post(client, "/repo/\(normalID)/validate", owner, #"{"mode":"NORMAL","repoBuckets":[{"folder":"y","bucketId":"\#(b3)"}]}"#)
            #expect(try code(validateDrop) == "NORMAL_UNIT_FOLDER_CANNOT_DELETE")
            let validateNoMaster = try await Self.post(client, "/repo/validate", owner, #"{"repoId":"\#(mirrorID)","mode":"MIRROR","repoBuckets":[{"folder":"","bucketId":"\#(b1)"}]}"#)
            #expect(try code(validateNoMaster) == "MIRROR_MASTER_UNIT_MISSING")
            #expect(try await Self.post(client, "/repo/nope/validate", owner, #"{"mode":"NORMAL","repoBuckets":[{"folder":"z","bucketId":"\#(b3)"}]}"#).status == .notFound)

            let dropFolder = try await Self.post(client, "/repo/\(normalID)", owner, #"{"name":"n","storageType":"S3","mode":"NORMAL","workspaceId":"ws-1","repoBuckets":[{"folder":"y","bucketId":"\#(b3)"}]}"#, method: .put)
            #expect(try code(dropFolder) == "NORMAL_UNIT_FOLDER_CANNOT_DELETE")
            let addFolder = try await Self.post(client, "/repo/\(normalID)", owner, #"{"name":"n2","storageType":"S3","mode":"NORMAL","workspaceId":"ws-1","repoBuckets":[{"folder":"x","bucketId":"\#(b3)"},{"folder":"y","bucketId":"\#(b3)"}]}"#, method: .put)
            #expect(addFolder.status == .ok, "\(String(buffer: addFolder.body))")

            // Buckets of MIRROR repositories are not available; buckets in use cannot be deleted.
            let available = try await client.execute(uri: "/bucket/available", method: .get, headers: owner)
            let ids = try #require(try JSONSerialization.jsonObject(with: Data(String(buffer: available.body).utf8)) as? [[String: Any]]).compactMap { $0["id"] as? String }
            #expect(Set(ids) == [b3])
            // The legacy /unit routes answer with the unit names too (Appendix B).
            let legacyList = try Self.json(try await client.execute(uri: "/unit", method: .get, headers: owner))
            #expect((legacyList["units"] as? [[String: Any]])?.count == (legacyList["buckets"] as? [[String: Any]])?.count)
            #expect(try Self.json(try await client.execute(uri: "/bucket", method: .get, headers: owner))["units"] == nil)
            let legacyCreate = try await Self.post(client, "/unit", owner, #"{"name":"u1","bucket":"u1-provider","storageType":"S3","workspaceId":"ws-1"}"#)
            let legacyID = try #require(try Self.json(legacyCreate)["bucketId"] as? String)
            #expect(try Self.json(legacyCreate)["unitId"] as? String == legacyID)

            let inUse = try await client.execute(uri: "/bucket/\(b1)", method: .delete, headers: owner)
            #expect(inUse.status == .forbidden)

            let repos = try Self.json(try await client.execute(uri: "/repo?repoId=\(mirrorID)", method: .get, headers: owner))
            let repo = try #require((repos["repos"] as? [[String: Any]])?.first)
            #expect(repo["mode"] as? String == "MIRROR")
            #expect((repo["buckets"] as? [[String: Any]])?.count == 2)

            #expect(try await client.execute(uri: "/repo/\(mirrorID)", method: .delete, headers: owner).status == .ok)
            #expect(try await client.execute(uri: "/bucket/\(b1)", method: .delete, headers: owner).status == .ok)
            #expect(try await client.execute(uri: "/repo/\(mirrorID)", method: .delete, headers: owner).status == .notFound)
        }
    }

    // MARK: Keys and authorization

    @Test func repoKeysAuthorizeBotocoreSignedRequests() async throws {
        try await withHarness { harness, client in
            let owner = try await harness.auth()
            let bucket = try await Self.createBucket(client, owner, name: "photos")
            let repoResponse = try await Self.createRepo(client, owner, name: "gallery", links: #"{"folder":"","bucketId":"\#(bucket)"}"#)
            let repo = try #require(try Self.json(repoResponse)["repoId"] as? String)
            let other = try await Self.createBucket(client, owner, name: "secret-stuff")
            _ = try await Self.createRepo(client, owner, name: "vault", links: #"{"folder":"","bucketId":"\#(other)"}"#)

            func createKey(_ name: String, _ access: String) async throws -> (id: String, key: String, secret: String) {
                let response = try await Self.post(client, "/repo/\(repo)/apikey", owner, #"{"name":"\#(name)","accessType":"\#(access)","repoId":"\#(repo)"}"#)
                let body = try Self.json(response)
                let secret = try #require(body["secret"] as? String)
                #expect(secret.count == 40)
                return (try #require(body["id"] as? String), try #require(body["key"] as? String), secret)
            }
            let reader = try await createKey("reader", "READ")
            let writer = try await createKey("writer", "WRITE")

            let listed = try await client.execute(uri: "/repo/\(repo)/apikey", method: .get, headers: try await harness.auth("org-a", .user))
            #expect(!String(buffer: listed.body).contains(reader.secret))
            #expect((try Self.json(listed)["keys"] as? [[String: Any]])?.count == 2)

            // A registered node of the same organization asks.
            let signer = try await RegistryRoutesTests.createKey(client, RegistryRoutesTests.Harness(tokens: harness.tokens, registry: harness.registry, directory: harness.directory), org: "org-a")
            let registered = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await RegistryRoutesTests.registerBody(signer)))
            let nodeToken = try #require(try Self.json(registered)["nodeToken"] as? String)
            let nodeHeaders: HTTPFields = [.authorization: "Bearer \(nodeToken)", .contentType: "application/json"]

            func authorize(_ method: String, _ url: String, _ key: (id: String, key: String, secret: String), tamper: Bool = false) async throws -> TestResponse {
                var body = try await BotocoreSigner.signedRequest(method: method, url: url, accessKeyID: key.key, secret: key.secret)
                if tamper { body = body.replacingOccurrences(of: "/gallery/", with: "/gallery/x") }
                return try await Self.post(client, "/apikey/authorize", nodeHeaders, body)
            }
            let object = "http://node.example:9000/gallery/cats/tom%20cat.jpg"
            #expect(try await authorize("GET", object, reader).status == .ok)
            #expect(try await authorize("GET", "http://node.example:9000/gallery?list-type=2", reader).status == .ok)
            let readerPut = try await authorize("PUT", object, reader)
            #expect(readerPut.status == .forbidden)
            #expect((try Self.json(readerPut)["message"] as? String)?.contains("READ key") == true)
            #expect(try await authorize("PUT", object, writer).status == .ok)
            #expect(try await authorize("DELETE", object, writer).status == .ok)
            #expect(try await authorize("PUT", "http://node.example:9000/gallery?policy", writer).status == .forbidden)
            #expect(try await authorize("GET", object, reader, tamper: true).status == .forbidden)
            #expect(try await authorize("GET", "http://node.example:9000/vault/file", reader).status == .forbidden)
            // Virtual-hosted addressing.
            #expect(try await authorize("GET", "http://gallery.node.example:9000/cats/tom.jpg", reader).status == .ok)

            // Presigned URLs (boto3's generate_presigned_url): the query carries the signature.
            func presigned(_ method: String, _ key: (id: String, key: String, secret: String), expires: Int = 300, signedAt: Date? = nil,
                           edit: (String) -> String = { $0 }) async throws -> TestResponse {
                let body = edit(try await BotocoreSigner.presignedRequest(method: method, url: object, accessKeyID: key.key, secret: key.secret,
                                                                    expires: expires, signedAt: signedAt))
                return try await Self.post(client, "/apikey/authorize", nodeHeaders, body)
            }
            #expect(try await presigned("GET", reader).status == .ok)
            #expect(try await presigned("PUT", writer).status == .ok)
            let presignedPut = try await presigned("PUT", reader)
            #expect(presignedPut.status == .forbidden && String(buffer: presignedPut.body).contains("READ key"))
            let expired = try await presigned("GET", reader, expires: 3600, signedAt: Date().addingTimeInterval(-7200))
            #expect(expired.status == .forbidden && String(buffer: expired.body).contains("expired"), "\(String(buffer: expired.body))")
            #expect(try await presigned("GET", reader, edit: { $0.replacingOccurrences(of: "/gallery/", with: "/gallery/x") }).status == .forbidden)
            #expect(try await presigned("GET", reader, edit: { $0.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=900") }).status == .forbidden)
            #expect(try await presigned("GET", reader, edit: { $0.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=999999") }).status == .forbidden)

            // Upgrades, downgrades and revocation take effect at once.
            let upgrade = try await Self.post(client, "/repo/\(repo)/apikey/\(reader.id)", owner, #"{"name":"reader","accessType":"WRITE"}"#, method: .put)
            #expect(upgrade.status == .ok)
            #expect(try await authorize("PUT", object, reader).status == .ok)
            _ = try await Self.post(client, "/repo/\(repo)/apikey/\(reader.id)", owner, #"{"name":"reader","accessType":"READ"}"#, method: .put)
            #expect(try await authorize("PUT", object, reader).status == .forbidden)
            #expect(try await client.execute(uri: "/repo/\(repo)/apikey/\(writer.id)", method: .delete, headers: owner).status == .ok)
            let revoked = try await authorize("PUT", object, writer)
            #expect(revoked.status == .forbidden)
            #expect((try Self.json(revoked)["message"] as? String)?.contains("revoked") == true)

            // Without a node credential there is no answer at all.
            let anonymous = try await Self.post(client, "/apikey/authorize", [.contentType: "application/json"], try await BotocoreSigner.signedRequest(method: "GET", url: object, accessKeyID: reader.key, secret: reader.secret))
            #expect(anonymous.status == .unauthorized)

            // A node of another organization may not ask about this organization's keys.
            let foreignSigner = try await RegistryRoutesTests.createKey(client, RegistryRoutesTests.Harness(tokens: harness.tokens, registry: harness.registry, directory: harness.directory), org: "org-b")
            let foreignNode = try await client.execute(uri: "/register", method: .post, body: ByteBuffer(string: try await RegistryRoutesTests.registerBody(foreignSigner, ip: "198.51.100.20", org: "org-b")))
            let foreignToken = try #require(try Self.json(foreignNode)["nodeToken"] as? String)
            let foreign = try await Self.post(client, "/apikey/authorize", [.authorization: "Bearer \(foreignToken)"], try await BotocoreSigner.signedRequest(method: "GET", url: object, accessKeyID: reader.key, secret: reader.secret))
            #expect(foreign.status == .forbidden)
        }
    }

    // MARK: Tenancy and roles

    @Test func organizationWorkspaceAndRoleMatrix() async throws {
        try await withHarness { harness, client in
            let owner = try await harness.auth()
            let bucket = try await Self.createBucket(client, owner, name: "mine")
            let repoResponse = try await Self.createRepo(client, owner, name: "r", links: #"{"folder":"","bucketId":"\#(bucket)"}"#)
            let repo = try #require(try Self.json(repoResponse)["repoId"] as? String)
            let keyResponse = try await Self.post(client, "/repo/\(repo)/apikey", owner, #"{"name":"k","accessType":"READ"}"#)
            let key = try #require(try Self.json(keyResponse)["id"] as? String)

            let user = try await harness.auth("org-a", .user)
            let admin = try await harness.auth("org-a", .administrators)
            let stranger = try await harness.auth("org-b", .owner)
            let otherWorkspace = try await harness.auth("org-a", .owner, workspaces: ["ws-9"])

            // Reads: USER of the org 200; another org or another workspace 404 (or empty lists).
            for uri in ["/repo/\(repo)/apikey"] {
                #expect(try await client.execute(uri: uri, method: .get, headers: user).status == .ok)
                #expect(try await client.execute(uri: uri, method: .get, headers: stranger).status == .notFound)
                #expect(try await client.execute(uri: uri, method: .get, headers: otherWorkspace).status == .notFound)
            }
            for uri in ["/bucket", "/repo"] {
                #expect(try await client.execute(uri: uri, method: .get, headers: user).status == .ok)
                let foreign = String(buffer: try await client.execute(uri: uri, method: .get, headers: stranger).body)
                #expect(!foreign.contains(bucket) && !foreign.contains(repo), "\(uri) leaked: \(foreign)")
            }
            #expect(try await client.execute(uri: "/bucket/\(bucket)/validate", method: .post, headers: stranger).status == .notFound)

            // Writes: USER 403; another org 404; ADMINISTRATORS allowed.
            let writes: [(HTTPRequest.Method, String, String)] = [
                (.put, "/bucket/\(bucket)", #"{"name":"renamed"}"#),
                (.put, "/repo/\(repo)/apikey/\(key)", #"{"name":"k2","accessType":"WRITE"}"#),
                (.post, "/repo/\(repo)/apikey", #"{"name":"k3","accessType":"READ"}"#),
                (.put, "/repo/\(repo)", #"{"name":"r","storageType":"S3","mode":"NORMAL","workspaceId":"ws-1","repoBuckets":[{"folder":"","bucketId":"\#(bucket)"}]}"#),
            ]
            for (method, uri, body) in writes {
                #expect(try await Self.post(client, uri, user, body, method: method).status == .forbidden, "USER \(method) \(uri)")
                #expect(try await Self.post(client, uri, stranger, body, method: method).status == .notFound, "other org \(method) \(uri)")
                #expect(try await Self.post(client, uri, admin, body, method: method).status == .ok, "ADMIN \(method) \(uri)")
            }
            #expect(try await Self.post(client, "/bucket", user, #"{"name":"x","bucket":"x","storageType":"S3","workspaceId":"ws-1"}"#).status == .forbidden)
            #expect(try await Self.post(client, "/bucket", otherWorkspace, #"{"name":"x","bucket":"x","storageType":"S3","workspaceId":"ws-1"}"#).status == .forbidden)
            #expect(try await client.execute(uri: "/repo/\(repo)", method: .delete, headers: stranger).status == .notFound)
            #expect(try await client.execute(uri: "/bucket/\(bucket)", method: .delete, headers: user).status == .forbidden)
            #expect(try await client.execute(uri: "/bucket", method: .get).status == .unauthorized)
        }
    }
}

import Benchmark
import Catalog
import CollectorModel
import CollectorStore
import CollectorTesting
import ControlPlanePostgres
import FlashbackWire
import Crypto
import _CryptoExtras
import Foundation
import Logging
import Registry
import Synchronization

/// The control plane's hot and write paths, in-process, on the embedded store and on a
/// throwaway PostgreSQL 15 (cluster mode, the barrier attached as `serve` attaches it):
/// registering a node (signature check, replay record, upsert), checking a node token,
/// authorizing a SigV4 request with a repo key from the warm cache, and authorizing with a key
/// another replica created a moment ago (cache miss → change-version barrier → reload).
/// One operation per measured iteration; signatures are made before the measurement.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .peakMemoryResident],
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 20_000)

    for backend in [Backend.embedded, .postgres] {
        Benchmark("register a node (verify RSA signature, replay record, upsert), \(backend.rawValue)",
                  configuration: .init(maxIterations: 300)) { benchmark in
            let fixture = try await Fixtures.shared.fixture(backend)
            let registration = try fixture.nextRegistration()
            benchmark.startMeasurement()
            blackHole(try await fixture.registry.register(registration))
            benchmark.stopMeasurement()
        }
        Benchmark("node token check, warm cache, \(backend.rawValue)") { benchmark in
            let fixture = try await Fixtures.shared.fixture(backend)
            benchmark.startMeasurement()
            blackHole(await fixture.registry.authenticateRefreshing(nodeToken: fixture.nodeToken))
            benchmark.stopMeasurement()
        }
        Benchmark("authorize a SigV4 GET with a repo key, warm cache, \(backend.rawValue)") { benchmark in
            let fixture = try await Fixtures.shared.fixture(backend)
            let request = fixture.signedRequest(fixture.key)
            benchmark.startMeasurement()
            let decision = await fixture.authorizer.authorize(request, nodeOrganization: Fixture.organization, isPublicNode: false, bucketHint: nil, now: Date())
            benchmark.stopMeasurement()
            precondition(decision.allow, decision.message)
        }
    }
    Benchmark("authorize with a key another replica just created (miss, barrier, catalog reload), postgresql",
              configuration: .init(maxIterations: 300)) { benchmark in
        let fixture = try await Fixtures.shared.fixture(.postgres)
        let key = try await fixture.keyFromOtherReplica()
        let request = fixture.signedRequest(key)
        // Misses may ask the database 20 times a second (ControlPlaneSync.missesPerSecond).
        try await Task.sleep(for: .milliseconds(60))
        benchmark.startMeasurement()
        let decision = await fixture.authorizer.authorize(request, nodeOrganization: Fixture.organization, isPublicNode: false, bucketHint: nil, now: Date())
        benchmark.stopMeasurement()
        precondition(decision.allow, decision.message)
    }
}

enum Backend: String, Sendable {
    case embedded = "embedded RocksDB"
    case postgres = "postgresql"
}

/// One fixture per backend, built on first use.
actor Fixtures {
    static let shared = Fixtures()
    private var built: [String: Fixture] = [:]

    func fixture(_ backend: Backend) async throws -> Fixture {
        if let fixture = built[backend.rawValue] { return fixture }
        let fixture = try await Fixture.make(backend)
        built[backend.rawValue] = fixture
        return fixture
    }
}

final class Fixture: @unchecked Sendable {
    static let organization = "org-bench"
    let registry: NodeRegistry
    let catalog: StorageCatalog
    let authorizer: RepoKeyAuthorizer
    let nodeToken: String
    let key: (id: String, secret: String)
    let repoID: String
    /// A second catalog over the same database: another replica.
    let otherReplica: StorageCatalog?
    private let signingKey: _RSA.Signing.PrivateKey
    /// Node addresses handed out so far, across fixtures (each registration is a new node).
    private static let counter = Atomic<Int>(0)
    private let keep: [AnyObject]

    private init(registry: NodeRegistry, catalog: StorageCatalog, otherReplica: StorageCatalog?, signingKey: _RSA.Signing.PrivateKey,
                 nodeToken: String, key: (id: String, secret: String), repoID: String, keep: [AnyObject]) {
        self.registry = registry
        self.catalog = catalog
        self.otherReplica = otherReplica
        self.signingKey = signingKey
        self.nodeToken = nodeToken
        self.key = key
        self.repoID = repoID
        self.keep = keep
        authorizer = RepoKeyAuthorizer(catalog: catalog)
    }

    static func make(_ backend: Backend) async throws -> Fixture {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let secrets = SecretBox(masterKey: MasterKey(key: SymmetricKey(size: .bits256)))
        let registry: NodeRegistry
        let catalog: StorageCatalog
        var openOtherReplica: (@Sendable () async throws -> StorageCatalog)?
        var keep: [AnyObject] = []
        switch backend {
        case .embedded:
            let directory = TemporaryDirectory(prefix: "bench-control-plane")
            let storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), logger: logger)
            registry = try NodeRegistry(storage: storage, secrets: secrets, logger: logger)
            catalog = try StorageCatalog(storage: storage, secrets: secrets, logger: logger)
            keep = [directory, storage]
        case .postgres:
            let server = try await PostgresServer()
            let database = try ControlPlaneDatabase(url: try PostgresURL(server.url), logger: logger)
            Task { await database.run() }
            try await database.migrate()
            let registryStore = PostgresRegistryStore(database: database)
            let catalogStore = PostgresCatalogStore(database: database)
            registry = try await NodeRegistry.open(store: registryStore, secrets: secrets, logger: logger)
            catalog = try await StorageCatalog.open(store: catalogStore, secrets: secrets, logger: logger)
            // The barrier and the miss path as `serve` attaches them; no listener, so a key made
            // by the other replica is always a miss here.
            ControlPlaneSync(database: database, registry: registry, catalog: catalog, registryStore: registryStore,
                             catalogStore: catalogStore, logger: logger).attach()
            let quiet = logger
            openOtherReplica = { try await StorageCatalog.open(store: PostgresCatalogStore(database: database), secrets: secrets, logger: quiet) }
            keep = [server, database]
        }
        let (_, pem) = try await registry.createKey(organization: organization)
        let signingKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        let scope = CatalogScope(organization: organization, workspaces: [])
        var draft = BucketDraft()
        (draft.name, draft.bucket, draft.storageType, draft.workspaceId) = ("media", "media", .s3, "ws-1")
        let bucket = try await catalog.createBucket(scope, draft, validation: nil)
        let repo = try await catalog.createRepository(scope, RepositoryDraft(
            name: "site", storageType: .s3, mode: .normal, workspaceId: "ws-1",
            buckets: [RepoBucketLink(folder: "", master: true, bucketId: bucket.id)], walletAddress: nil))
        let created = try await catalog.createAPIKey(scope, repoId: repo.id, name: "reader", accessType: .read)
        // The other replica opens after the repository exists (it has no listener either).
        let otherReplica = try await openOtherReplica?()
        let fixture = Fixture(registry: registry, catalog: catalog, otherReplica: otherReplica, signingKey: signingKey, nodeToken: "",
                              key: (created.key.accessKeyID, created.secret), repoID: repo.id, keep: keep)
        let (_, token) = try await registry.register(try fixture.nextRegistration())
        return Fixture(registry: registry, catalog: catalog, otherReplica: otherReplica, signingKey: signingKey, nodeToken: token,
                       key: (created.key.accessKeyID, created.secret), repoID: repo.id, keep: keep)
    }

    /// A registration of a new node (a new address each time), signed now.
    func nextRegistration() throws -> NodeRegistration {
        let index = Self.counter.add(1, ordering: .relaxed).newValue
        let ip = "10.\(index / 65_536 % 256).\(index / 256 % 256).\(index % 256)"
        let stamp = String(Int64(Date().timeIntervalSince1970))
        let timestamp = try NodeTimestamp(string: stamp).orThrow()
        let text = "\(ip)|eu-west-1|\(timestamp.signedText)"
        let signature = try signingKey.signature(for: Array(text.utf8), padding: .insecurePKCS1v1_5)
        let message = SignedNodeMessage(ip: ip, region: "eu-west-1", timestamp: timestamp,
                                        signature: signature.rawRepresentation.base64EncodedString(), organization: Self.organization)
        return NodeRegistration(message: message, provider: "AWS", version: "1.0.0", status: "running", nodeServices: nil, url: nil)
    }

    /// `GET /site/cat.jpg` signed with `key`, as an app would send it through a node.
    func signedRequest(_ key: (id: String, secret: String)) -> SigV4.Request {
        var request = SigV4.Request(method: "GET", path: "/site/cat.jpg", query: "", headers: [(name: "host", value: "node.example:9000")])
        SigV4.sign(&request, accessKeyID: key.id, secret: key.secret, region: "us-east-1", date: Date())
        return request
    }

    /// A repo key created through the other replica.
    func keyFromOtherReplica() async throws -> (id: String, secret: String) {
        guard let otherReplica else { throw CancellationError() }
        let created = try await otherReplica.createAPIKey(CatalogScope(organization: Self.organization, workspaces: []), repoId: repoID,
                                                          name: "fresh", accessType: .read)
        return (created.key.accessKeyID, created.secret)
    }
}

extension Optional {
    func orThrow() throws -> Wrapped {
        guard let self else { throw CancellationError() }
        return self
    }
}

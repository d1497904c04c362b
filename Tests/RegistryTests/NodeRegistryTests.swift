import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import Logging
import Registry
import Testing

/// The registry on a real RocksDB, with signatures made by the `openssl` CLI as a node makes them.
@Suite("Node registry")
final class NodeRegistryTests {
    let directory = TemporaryDirectory(prefix: "registry")
    let clock = ManualClock()
    let masterKey = MasterKey(key: SymmetricKey(size: .bits256))
    var storage: CollectorStorage
    var registry: NodeRegistry

    init() throws {
        storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), logger: Logger(label: "test"))
        registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: masterKey), clock: clock.source, logger: Logger(label: "test"))
    }

    deinit { storage.close() }

    /// Closes and reopens storage and registry, as a restart does.
    func restart(settings: RegistrySettings = RegistrySettings()) throws {
        storage.close()
        storage = try CollectorStorage.open(dataDirectory: directory.appending("data"), logger: Logger(label: "test"))
        registry = try NodeRegistry(storage: storage, secrets: SecretBox(masterKey: masterKey), settings: settings, clock: clock.source, logger: Logger(label: "test"))
    }

    var timestamp: String { String(Int64(clock.now.timeIntervalSince1970)) }

    func registration(_ signer: OpenSSLSigner, ip: String = "203.0.113.10", region: String = "eu-central-1", org: String? = "org-a",
                      timestamp: String? = nil, signedRegion: String? = nil) async throws -> NodeRegistration {
        let stamp = timestamp ?? self.timestamp
        let signature = try await signer.signNodeMessage(ip: ip, region: signedRegion ?? region, timestamp: stamp)
        let message = SignedNodeMessage(ip: ip, region: region, timestamp: try #require(NodeTimestamp(string: stamp)), signature: signature, organization: org)
        return NodeRegistration(message: message, provider: "AWS", version: "0.0.28", status: "running", nodeServices: nil, url: nil)
    }

    func orgSigner(_ organization: String = "org-a") async throws -> OpenSSLSigner {
        let (_, pem) = try await registry.createKey(organization: organization)
        return try OpenSSLSigner(privateKeyPEM: pem, directory: directory.path)
    }

    @Test func generatedKeyIsPKCS1AndItsSignaturesRegisterANode() async throws {
        let (key, pem) = try await registry.createKey(organization: "org-a")
        #expect(pem.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        #expect(key.publicKeyPEM.hasPrefix("-----BEGIN PUBLIC KEY-----"))
        let signer = try OpenSSLSigner(privateKeyPEM: pem, directory: directory.path)
        let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: timestamp)
        #expect(signature.count == 344)

        let (node, token) = try await registry.register(try await registration(signer))
        #expect(node.ip == "203.0.113.10")
        #expect(node.organization == "org-a")
        #expect(node.keyID == key.id)
        #expect(node.nodeServices == 1)
        #expect(node.provider == "AWS")
        #expect(registry.nodes(organization: "org-a").map(\.id) == [node.id])
        #expect(registry.keys(organization: "org-a").first?.nodeIPs == ["203.0.113.10"])
        #expect(registry.authenticate(nodeToken: token)?.id == node.id)
        #expect(registry.credential(nodeID: node.id) == token)
    }

    @Test func rejectedSignaturesChangeNothing() async throws {
        let signer = try await orgSigner()
        let stranger = try await OpenSSLSigner.generate(directory: directory.path)
        let otherOrg = try await orgSigner("org-b")

        let cases: [(String, NodeRegistration, String)] = [
            ("wrong key", try await registration(stranger), "does not verify"),
            ("another organization's key", try await registration(otherOrg), "does not verify"),
            ("tampered region", try await registration(signer, region: "us-east-1", signedRegion: "eu-central-1"), "does not verify"),
            ("stale timestamp", try await registration(signer, timestamp: String(Int64(clock.now.timeIntervalSince1970) - 301)), "old"),
            ("future timestamp", try await registration(signer, timestamp: String(Int64(clock.now.timeIntervalSince1970) + 301)), "future"),
            ("unknown organization", try await registration(signer, org: "org-unknown"), "has no keys"),
            ("public node without platform key", try await registration(signer, org: nil), "id_org is required"),
        ]
        for (name, request, text) in cases {
            do {
                _ = try await registry.register(request)
                Issue.record("\(name) was accepted")
            } catch let error as RegistryError {
                #expect(error.kind == .invalid, "\(name)")
                #expect(error.message.contains(text), "\(name): \(error.message)")
            }
        }
        #expect(registry.nodes(organization: "org-a").isEmpty)
        #expect(registry.nodes(organization: "org-b").isEmpty)
        #expect(registry.nodes(services: 0, organization: nil).isEmpty)
    }

    @Test func aReplayedSignatureIsRejectedEvenAfterARestart() async throws {
        let signer = try await orgSigner()
        let request = try await registration(signer)
        _ = try await registry.register(request)
        await #expect(throws: RegistryError.invalid("signature was already used (replay); sign a new message with a fresh timestamp")) {
            try await self.registry.register(request)
        }
        try restart()
        await #expect(throws: RegistryError.self) { try await self.registry.register(request) }
        // A new message one second later is fine.
        clock.advance(by: 1)
        _ = try await registry.register(try await registration(signer))
    }

    /// The installer signs `/secrets` and `/register` with the same text; in one second that is
    /// the same signature, refused twice per purpose only, across a restart too.
    @Test func theReplayGuardKeepsOneRecordPerPurpose() async throws {
        let signer = try await orgSigner()
        let request = try await registration(signer)
        let keyID = try await registry.verify(request.message, purpose: .secrets)
        #expect(registry.verifyingKeyPEM(keyID: keyID)?.hasPrefix("-----BEGIN PUBLIC KEY-----") == true)
        await #expect(throws: RegistryError.self) { try await self.registry.verify(request.message, purpose: .secrets) }
        _ = try await registry.register(request)
        try restart()
        await #expect(throws: RegistryError.self) { try await self.registry.verify(request.message, purpose: .secrets) }
        await #expect(throws: RegistryError.self) { try await self.registry.register(request) }
    }

    @Test func isoTimestampsAreSignedVerbatim() async throws {
        let signer = try await orgSigner()
        let iso = clock.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        let (node, _) = try await registry.register(try await registration(signer, timestamp: iso))
        #expect(node.ip == "203.0.113.10")
    }

    @Test func reRegistrationUpsertsAndRotatesTheCredential() async throws {
        let signer = try await orgSigner()
        let (first, oldToken) = try await registry.register(try await registration(signer))
        clock.advance(by: 5)
        let (second, newToken) = try await registry.register(try await registration(signer, region: "eu-west-1"))
        #expect(first.id == second.id)
        #expect(second.region == "eu-west-1")
        #expect(oldToken != newToken)
        #expect(registry.authenticate(nodeToken: oldToken) == nil)
        #expect(registry.authenticate(nodeToken: newToken)?.id == first.id)
        #expect(registry.authenticate(nodeToken: "fbn1.\(first.id).forged") == nil)
        #expect(registry.authenticate(nodeToken: "garbage") == nil)
        // The same IP in another organization is another node.
        let other = try await orgSigner("org-b")
        let (third, _) = try await registry.register(try await registration(other, org: "org-b"))
        #expect(third.id != first.id)
    }

    @Test func keysNodesLinksAndCredentialsSurviveARestart() async throws {
        let signer = try await orgSigner()
        let (node, token) = try await registry.register(try await registration(signer))
        let keys = registry.keys(organization: "org-a")
        try restart()
        #expect(registry.keys(organization: "org-a") == keys)
        #expect(registry.nodes(organization: "org-a") == [node])
        #expect(registry.authenticate(nodeToken: token)?.id == node.id)
        // The restored key still verifies new signatures.
        clock.advance(by: 1)
        _ = try await registry.register(try await registration(signer))
    }

    @Test func atMostFiveKeysPerOrganization() async throws {
        for _ in 0..<5 { _ = try await registry.createKey(organization: "org-a") }
        await #expect(throws: RegistryError.invalid("Maximum number of organization keys (5) has been reached. Delete an existing key before creating a new one.")) {
            try await self.registry.createKey(organization: "org-a")
        }
        _ = try await registry.createKey(organization: "org-b")
        let listed = registry.keys(organization: "org-a")
        #expect(listed.count == 5)
        #expect(listed.map(\.key.createdAt) == listed.map(\.key.createdAt).sorted(by: >))
    }

    @Test func deletingKeysCascadesToNodeLinksAndCredentials() async throws {
        let signer = try await orgSigner()
        let (node, token) = try await registry.register(try await registration(signer))
        let keyID = try #require(registry.keys(organization: "org-a").first?.key.id)
        await #expect(throws: RegistryError.self) { try await self.registry.deleteKey(organization: "org-b", id: keyID) }
        try await registry.deleteKey(organization: "org-a", id: keyID)
        #expect(registry.keys(organization: "org-a").isEmpty)
        #expect(registry.node(id: node.id)?.keyID == nil)
        #expect(registry.authenticate(nodeToken: token) == nil)
        // The node must register again with a new key; the old key no longer verifies.
        clock.advance(by: 1)
        await #expect(throws: RegistryError.self) { try await self.registry.register(try await self.registration(signer)) }
        _ = try await registry.createKey(organization: "org-a")
        _ = try await registry.createKey(organization: "org-a")
        #expect(try await registry.deleteAllKeys(organization: "org-a") == 2)
        #expect(try await registry.deleteAllKeys(organization: "org-a") == 0)
    }

    @Test func unregisterRemovesTheNode() async throws {
        let signer = try await orgSigner()
        let (node, token) = try await registry.register(try await registration(signer))
        clock.advance(by: 1)
        let signature = try await signer.signNodeMessage(ip: node.ip, region: node.region, timestamp: timestamp)
        // Without a region, the stored one completes the signed message.
        try await registry.unregister(ip: node.ip, region: nil, timestamp: try #require(NodeTimestamp(string: timestamp)), signature: signature, organization: "org-a")
        #expect(registry.nodes(organization: "org-a").isEmpty)
        #expect(registry.authenticate(nodeToken: token) == nil)
        #expect(registry.keys(organization: "org-a").first?.nodeIPs == [])
        clock.advance(by: 1)
        // A correctly signed message with its region learns that the address is gone…
        let again = try await signer.signNodeMessage(ip: node.ip, region: node.region, timestamp: timestamp)
        await #expect(throws: RegistryError.notFound("Node 203.0.113.10 is not registered")) {
            try await self.registry.unregister(ip: node.ip, region: node.region, timestamp: try #require(NodeTimestamp(string: self.timestamp)), signature: again, organization: "org-a")
        }
    }

    /// Without a region, an unknown address gets the refusal of a wrong signature: nobody learns
    /// whether an IP is registered without a valid signature (issue 12, item 8).
    @Test func unregisterChecksTheSignatureBeforeRevealingAnAddress() async throws {
        let signer = try await orgSigner()
        let (node, _) = try await registry.register(try await registration(signer))
        clock.advance(by: 1)
        let forged = try await orgSigner("org-z").signNodeMessage(ip: node.ip, region: node.region, timestamp: timestamp)
        var refusals: [String] = []
        for ip in [node.ip, "198.51.100.77"] {
            do {
                try await registry.unregister(ip: ip, region: nil, timestamp: try #require(NodeTimestamp(string: timestamp)), signature: forged, organization: "org-a")
                Issue.record("a forged unregistration of \(ip) was accepted")
            } catch let error as RegistryError {
                refusals.append(error.message)
            }
        }
        #expect(refusals.count == 2 && refusals[0] == refusals[1], "\(refusals)")
        #expect(refusals.first?.contains("does not verify") == true)
        #expect(registry.nodes(organization: "org-a").count == 1)
    }

    @Test func softDeleteByIdOrIPRevokesAndHides() async throws {
        let signer = try await orgSigner()
        let (node, token) = try await registry.register(try await registration(signer))
        await #expect(throws: RegistryError.self) { try await self.registry.deleteNode(organization: "org-b", idOrIP: node.id) }
        try await registry.deleteNode(organization: "org-a", idOrIP: node.ip)
        #expect(registry.nodes(organization: "org-a").isEmpty)
        #expect(registry.authenticate(nodeToken: token) == nil)
        await #expect(throws: RegistryError(.conflict, "Node is already deleted")) { try await self.registry.deleteNode(organization: "org-a", idOrIP: node.id) }
        await #expect(throws: RegistryError.notFound("Node not found in this organization")) { try await self.registry.deleteNode(organization: "org-a", idOrIP: "198.51.100.1") }
        // Registering again does not undo the delete, not even after a restart; restoring does.
        clock.advance(by: 1)
        await #expect(throws: RegistryError.self) { try await self.registry.register(try await self.registration(signer)) }
        try restart()
        clock.advance(by: 1)
        await #expect(throws: RegistryError.self) { try await self.registry.register(try await self.registration(signer)) }
        await #expect(throws: RegistryError.self) { try await self.registry.restoreNode(organization: "org-b", idOrIP: node.id) }
        #expect(try await registry.restoreNode(organization: "org-a", idOrIP: node.id).id == node.id)
        await #expect(throws: RegistryError(.conflict, "Node is not deleted")) { try await self.registry.restoreNode(organization: "org-a", idOrIP: node.id) }
        clock.advance(by: 1)
        let (again, newToken) = try await registry.register(try await registration(signer))
        #expect(again.id == node.id && registry.authenticate(nodeToken: newToken)?.id == node.id)
    }

    /// A node registering without a url is addressed as the installer names its hosts.
    @Test func nodeURLsFollowTheInstallersNames() async throws {
        let template = NodeURLTemplate(domain: "nodes.example.com")
        #expect(template.url(region: "eu-central-1", provider: "AWS", ip: "203.0.113.10") == "https://s3-eu-central-1-aws.nodes.example.com")
        #expect(template.url(region: "us-east-1", provider: nil, ip: "203.0.113.10") == "https://s3-us-east-1.nodes.example.com")
        #expect(template.url(region: "us-east-1", provider: "", ip: "203.0.113.10") == "https://s3-us-east-1.nodes.example.com")
        for (region, provider) in [("eu/../x", "AWS"), ("eu central", nil), ("eu-1", "a@b"), ("-eu", nil), ("", nil)] {
            #expect(template.url(region: region, provider: provider, ip: "203.0.113.10") == nil, "\(region) \(provider ?? "")")
        }
        #expect(NodeURLTemplate(template: "https://{ip}.{domain}:8443", domain: "d.test").url(region: "r", provider: nil, ip: "192.0.2.1")
                == "https://192.0.2.1.d.test:8443")

        var settings = RegistrySettings()
        settings.nodeURLs = template
        try restart(settings: settings)
        let signer = try await orgSigner()
        let (named, _) = try await registry.register(try await registration(signer))
        #expect(named.url == "https://s3-eu-central-1-aws.nodes.example.com")
        clock.advance(by: 1)
        var own = try await registration(signer, ip: "203.0.113.11")
        own.url = "https://my-node.example.org"
        #expect(try await registry.register(own).node.url == "https://my-node.example.org")
        clock.advance(by: 1)
        let (odd, _) = try await registry.register(try await registration(signer, ip: "203.0.113.12", region: "eu_central"))
        #expect(odd.url == "https://203.0.113.12", "a region that is no DNS label never reaches a URL")
    }

    @Test func livenessFollowsSilence() async throws {
        let signer = try await orgSigner()
        let (node, _) = try await registry.register(try await registration(signer))
        #expect(registry.liveness(of: node) == .online)
        clock.advance(by: 179)
        #expect(registry.liveness(of: node) == .online)
        clock.advance(by: 1)
        #expect(registry.liveness(of: node) == .offline)
        clock.advance(by: 719)
        #expect(registry.liveness(of: node) == .offline)
        clock.advance(by: 1)
        #expect(registry.liveness(of: node) == .disconnected)
    }

    @Test func publicNodesUseThePlatformKeyAndServiceFilters() async throws {
        let platform = try await OpenSSLSigner.generate(directory: directory.path)
        var settings = RegistrySettings()
        settings.platformPublicKeyPEM = try await platform.publicKeyPEM()
        try restart(settings: settings)
        var request = try await registration(platform, ip: "198.51.100.7", org: nil)
        request.nodeServices = 3
        let (publicNode, _) = try await registry.register(request)
        #expect(publicNode.organization == nil)
        let signer = try await orgSigner()
        var privateRequest = try await registration(signer)
        privateRequest.nodeServices = 4
        let (privateNode, _) = try await registry.register(privateRequest)

        #expect(registry.nodes(services: 0, organization: nil).map(\.id) == [publicNode.id])
        #expect(registry.nodes(services: 2, organization: nil).map(\.id) == [publicNode.id])
        #expect(registry.nodes(services: 4, organization: nil).isEmpty)
        #expect(registry.nodes(services: 4, organization: "org-a").map(\.id) == [privateNode.id])
        #expect(Set(registry.nodes(services: 0, organization: "org-a").map(\.id)) == [publicNode.id, privateNode.id])
    }
}

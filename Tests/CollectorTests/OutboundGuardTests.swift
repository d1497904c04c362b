import Catalog
import CollectorHTTP
import CollectorModel
import CollectorTesting
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Registry
import Testing

/// The server-side-request-forgery guard of bucket validation (issue 12, item 5): a listener on
/// 127.0.0.1 gets no connection while the guard is on, and does with `--validate-allow-private`.
@Suite("Outbound guard")
struct OutboundGuardTests {
    static let validateBody = #"{"key":"AKIAEXAMPLE","secret":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","endpoint":"http://127.0.0.1:%PORT%"}"#

    @Test func aLoopbackEndpointIsNeverContactedWithTheGuardOn() async throws {
        let probe = try ConnectionProbe()
        try await CatalogRoutesTests().withHarness(policy: .publicOnly) { harness, client in
            let owner = try await harness.auth()
            let bucket = try await CatalogRoutesTests.createBucket(client, owner, name: "internal")
            let body = Self.validateBody.replacingOccurrences(of: "%PORT%", with: String(probe.port))
            let refused = try await CatalogRoutesTests.post(client, "/bucket/\(bucket)/validate", owner, body)
            #expect(refused.status == .badRequest)
            let json = try CatalogRoutesTests.json(refused)
            #expect((json["message"] as? String)?.contains("non-public address") == true, "\(json)")
            // Creating or updating a bucket aimed inward is refused the same way (credentials given).
            let created = try await CatalogRoutesTests.post(client, "/bucket", owner,
                                                            #"{"name":"inward","bucket":"x","storageType":"S3","key":"AK","secret":"c2VjcmV0","endpoint":"http://127.0.0.1:\#(probe.port)"}"#)
            #expect(created.status == .badRequest, "\(String(buffer: created.body))")
            // Other spellings of loopback and the cloud metadata address.
            for endpoint in ["http://localhost:\(probe.port)", "http://127.1:\(probe.port)", "http://[::1]:\(probe.port)", "http://[::ffff:127.0.0.1]:\(probe.port)",
                             "http://0.0.0.0:\(probe.port)", "http://169.254.169.254", "http://10.0.0.1", "http://192.168.1.1", "http://[fe80::1]"] {
                let response = try await CatalogRoutesTests.post(client, "/bucket/\(bucket)/validate", owner,
                                                                 #"{"key":"AK","secret":"c2VjcmV0","endpoint":"\#(endpoint)"}"#)
                #expect(response.status == .badRequest, "\(endpoint): \(String(buffer: response.body))")
                #expect(String(buffer: response.body).contains("non-public") || String(buffer: response.body).contains("DNS"), "\(endpoint): \(String(buffer: response.body))")
            }
            for endpoint in ["file:///etc/passwd", "unix:///var/run/docker.sock", "gopher://127.0.0.1", "http://"] {
                let response = try await CatalogRoutesTests.post(client, "/bucket/\(bucket)/validate", owner, #"{"key":"AK","secret":"c2VjcmV0","endpoint":"\#(endpoint)"}"#)
                #expect(response.status == .badRequest, "\(endpoint)")
                #expect(String(buffer: response.body).contains("must be an http"), "\(endpoint): \(String(buffer: response.body))")
            }
            // A member without administration rights may not aim the request at all.
            let member = try await harness.auth("org-a", .user)
            let forbidden = try await CatalogRoutesTests.post(client, "/bucket/\(bucket)/validate", member, body)
            #expect(forbidden.status == .forbidden, "\(String(buffer: forbidden.body))")
        }
        #expect(probe.connections == 0)
    }

    @Test func theOperatorCanAllowPrivateEndpoints() async throws {
        let probe = try ConnectionProbe()
        try await CatalogRoutesTests().withHarness(policy: .allowAll) { harness, client in
            let owner = try await harness.auth()
            let bucket = try await CatalogRoutesTests.createBucket(client, owner, name: "internal")
            let body = Self.validateBody.replacingOccurrences(of: "%PORT%", with: String(probe.port))
            let answered = try await CatalogRoutesTests.post(client, "/bucket/\(bucket)/validate", owner, body)
            #expect(answered.status == .ok, "\(String(buffer: answered.body))")
        }
        #expect(probe.connections >= 1)
        // An allow-listed host passes too, whatever it resolves to.
        let listed = OutboundPolicy(allowedHosts: ["LOCALHOST"])
        try await listed.check(try #require(URL(string: "http://localhost:\(probe.port)")))
    }

    @Test func addressRanges() {
        for address in [[127, 0, 0, 1], [10, 1, 2, 3], [172, 16, 0, 1], [172, 31, 255, 255], [192, 168, 0, 1], [169, 254, 169, 254], [0, 0, 0, 0],
                        [100, 64, 0, 1], [224, 0, 0, 1], [255, 255, 255, 255]] as [[UInt8]] {
            #expect(!OutboundPolicy.isPublic(address), "\(address)")
        }
        for address in [[8, 8, 8, 8], [172, 32, 0, 1], [52, 216, 0, 1], [100, 128, 0, 1]] as [[UInt8]] {
            #expect(OutboundPolicy.isPublic(address), "\(address)")
        }
        func v6(_ text: String) -> [UInt8] {
            var raw = in6_addr()
            _ = inet_pton(AF_INET6, text, &raw)
            return withUnsafeBytes(of: &raw) { Array($0) }
        }
        for text in ["::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:7f00:1::1", "ff02::1"] {
            #expect(!OutboundPolicy.isPublic(v6(text)), "\(text)")
        }
        for text in ["2600:1f18::1", "::ffff:8.8.8.8", "2a00:1450:4001::1"] {
            #expect(OutboundPolicy.isPublic(v6(text)), "\(text)")
        }
    }
}

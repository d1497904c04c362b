import CollectorTesting
import Foundation
import Testing

/// `flashback-collector simulate` against the real binary: nodes registered with real signatures,
/// status and traffic stored, over HTTP and over signed UDP.
@Suite("simulate: a fleet against the real binary")
struct SimulateCommandTests {
    let directory = TemporaryDirectory(prefix: "simulate")
    var dataDirectory: String { directory.appending("data") }

    func count(_ collector: CollectorProcess, _ auth: [(String, String)], measurement: String, field: String) async throws -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        let response = try await collector.get("/api/v1/rollups?measurement=\(measurement)&field=\(field)&start=\(now - 600)&end=\(now + 600)&aggregate=count", headers: auth)
        let json = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return json?["count"] as? Int ?? -1
    }

    @Test func nodesRegisterAndReportOverHTTPAndUDP() async throws {
        let collector = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let auth = try await collector.authorization(organization: "org-sim")
        let key = try await collector.get("/organization/org-sim/key", headers: auth + [("Accept", "application/x-pem-file")], method: "POST")
        #expect(key.status == 200)
        let keyFile = directory.appending("org.pem")
        try key.body.write(toFile: keyFile, atomically: true, encoding: .utf8)

        let common = ["simulate", "--org", "org-sim", "--key", keyFile, "--nodes", "3", "--buckets-per-node", "2",
                      "--interval", "1s", "--duration", "2.5", "--report-every", "1", "--seed", "7", "--target", collector.baseURL]
        let overHTTP = try await runCommand(CollectorProcess.executableURL.path, common)
        #expect(overHTTP.status == 0, "\(overHTTP.standardError)")
        #expect(overHTTP.standardOutput.contains("registered 3 nodes"))
        #expect(overHTTP.standardOutput.contains("errors 0"), "\(overHTTP.standardOutput)")
        #expect(!overHTTP.standardOutput.contains("last error"), "\(overHTTP.standardOutput)")
        let statusOverHTTP = try await count(collector, auth, measurement: "node_status", field: "status")
        let trafficOverHTTP = try await count(collector, auth, measurement: "bucket_traffic", field: "upl_bytes")
        // 3 nodes x 2 buckets, at least two reports each.
        #expect(statusOverHTTP >= 12, "\(overHTTP.standardOutput)")
        #expect(trafficOverHTTP >= 12)

        // Over UDP to a socket of this test: every datagram is there once the command has exited.
        let socket = try BoundUDPSocket()
        let overUDP = try await runCommand(CollectorProcess.executableURL.path, common + ["--udp", "127.0.0.1:\(socket.port)", "--ip-prefix", "10.78"])
        #expect(overUDP.status == 0, "\(overUDP.standardError)")
        #expect(overUDP.standardOutput.contains("over UDP"))
        let datagrams = socket.drain()
        let nodesAfterUDP = try await collector.get("/organization/org-sim/nodes", headers: auth)
        // 3 nodes, at least two ticks each; each datagram signed by a registered node, with a
        // status and a traffic line per bucket.
        #expect(datagrams.count >= 6, "\(datagrams.count) datagrams")
        for datagram in datagrams {
            let lines = datagram.split(separator: "\n")
            let header = lines.first?.split(separator: " ") ?? []
            #expect(header.count == 4 && header[0] == "#fb1" && Data(base64Encoded: String(header[3]))?.count == 32, "\(lines.first ?? "")")
            #expect(header.count > 1 && nodesAfterUDP.body.contains("\"\(header[1])\""))
            #expect(lines.dropFirst().filter { $0.hasPrefix("node_status,bucket=") }.count == 2)
            #expect(lines.dropFirst().filter { $0.hasPrefix("bucket_traffic,bucket=") }.count == 2)
        }

        let nodes = nodesAfterUDP
        #expect(nodes.body.contains(#""total":6"#), "\(nodes.body)")
        #expect(nodes.body.contains(#""provider":"SIMULATOR""#))
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }
}

/// A UDP socket on a free loopback port that collects what is sent to it.
final class BoundUDPSocket {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, size) == 0 && getsockname(fd, generic, &size) == 0
            }
        }
        guard fd >= 0, bound else {
            if fd >= 0 { close(fd) }
            throw CocoaError(.fileWriteUnknown)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }

    /// Everything already received (the sender has exited), without waiting.
    func drain() -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            guard count > 0 else { return out }
            out.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
    }
}

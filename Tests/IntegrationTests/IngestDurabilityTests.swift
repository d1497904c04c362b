import AsyncHTTPClient
import CollectorAuth
import CollectorModel
import CollectorStore
import CollectorTesting
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// Ingest through the real binary: `kill -9` in the middle of a stream of writes loses nothing
/// that was acknowledged, and a clean restart finds it all. (UDP over a real socket is tested
/// in-process, where the test can wait for the listener instead of polling: UDPListenerTests.)
@Suite("ingest: the real binary")
struct IngestDurabilityTests {
    let directory = TemporaryDirectory(prefix: "ingest-binary")
    var dataDirectory: String { directory.appending("data") }

    func ownerAuth() async throws -> [(String, String)] {
        let secret = try SecretFile.load(at: dataDirectory + "/jwt.secret", byteCount: 32)
        let token = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: secret))
            .mint(for: CallerIdentity(organization: "org-d", user: "ops", role: .owner), lifetime: 600)
        return [("Authorization", "Bearer \(token)")]
    }

    func count(_ collector: CollectorProcess, auth: [(String, String)], measurement: String) async throws -> Int {
        let now = Int64(Date().timeIntervalSince1970)
        let response = try await collector.get("/api/v1/rollups?measurement=\(measurement)&field=v&start=\(now - 7200)&end=\(now + 7200)&aggregate=count", headers: auth)
        return (try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any])?["count"] as? Int ?? -1
    }

    @Test func killMinus9LosesNoAcknowledgedSample() async throws {
        // A long flush interval keeps the acknowledged samples in the ingest log (not yet in
        // blocks) when the kill lands, however slow the machine, so the restart must replay it.
        let first = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path, arguments: ["--flush-interval-ms", "600000"])
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        let auth = try await ownerAuth()
        let acknowledged = AcknowledgedCount()
        let base = Int64(Date().timeIntervalSince1970) * 1_000_000_000
        // Two writers stream 200-line batches with unique timestamps until the process dies; the
        // first to see 4,000 acknowledged samples signals, so the kill lands mid-stream.
        let (enough, signal) = AsyncStream.makeStream(of: Void.self)
        let writers = (0..<2).map { writer in
            Task {
                var batch = 0
                while !Task.isCancelled {
                    let lines = (0..<200).map { "durable,series=s\($0 % 10),writer=w\(writer) v=\($0) \(base + Int64(batch * 200 + $0) * 1_000)" }.joined(separator: "\n")
                    guard let response = try? await first.get("/write", headers: auth, method: "POST", body: lines), response.status == 204 else { break }
                    let total = acknowledged.add(200)
                    if total >= 4000 { signal.yield() }
                    batch += 1
                }
            }
        }
        var iterator = enough.makeAsyncIterator()
        _ = await iterator.next()
        first.send(SIGKILL)
        _ = await first.waitForExit()
        for writer in writers { writer.cancel() }
        for writer in writers { _ = await writer.value }
        signal.finish()
        let acked = acknowledged.value
        #expect(acked >= 4000)

        let second = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await second.waitFor(path: "/-/ready", status: 200))
        #expect(second.standardOutput.contains("previous shutdown was unclean"))
        let stored = try await count(second, auth: auth, measurement: "durable")
        #expect(stored >= acked, "acknowledged \(acked), found \(stored)")
        #expect(stored <= acked + 200 * 2, "more than the in-flight batches appeared")
        // The last writes before the kill were only in the ingest log: replayed at start.
        #expect(second.standardOutput.contains("replayed the ingest log"))
        second.send(SIGTERM)
        #expect(await second.waitForExit() == 0)

        // A clean shutdown flushes everything: the next start finds an empty log and the same data.
        let third = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path)
        #expect(await third.waitFor(path: "/-/ready", status: 200))
        #expect(!third.standardOutput.contains("previous shutdown was unclean"))
        #expect(!third.standardOutput.contains("replayed the ingest log"))
        #expect(try await count(third, auth: auth, measurement: "durable") == stored)
        third.send(SIGTERM)
        #expect(await third.waitForExit() == 0)
    }
}

/// Body limits and gzip through the real binary (`--max-body-size`).
@Suite("ingest: body limits and gzip")
struct IngestBodyLimitTests {
    let directory = TemporaryDirectory(prefix: "ingest-limits")

    @Test func gzipBodiesAndLimitsBeforeAndAfterDecompression() async throws {
        let collector = try CollectorProcess(dataDirectory: directory.appending("data"), logDirectory: directory.path, arguments: ["--max-body-size", "4096"])
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        defer { collector.send(SIGTERM) }
        let token = try await collector.userToken(organization: "org-z")
        let now = Int64(Date().timeIntervalSince1970)
        func gzip(_ text: String) async throws -> String {
            let input = directory.appending("body-\(UUID().uuidString.prefix(6))")
            try Data(text.utf8).write(to: URL(fileURLWithPath: input))
            _ = try await runCommand("/usr/bin/env", ["gzip", "-n", input])
            return input + ".gz"
        }
        func post(file: String, gzip: Bool) async throws -> Int {
            var request = HTTPClientRequest(url: "\(collector.baseURL)/write?precision=s")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            if gzip { request.headers.add(name: "Content-Encoding", value: "gzip") }
            request.body = .bytes(ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: file))))
            return Int(try await HTTPClient.shared.execute(request, timeout: .seconds(10)).status.code)
        }
        let small = (0..<20).map { "gz,s=\($0) v=\($0) \(now)" }.joined(separator: "\n")
        #expect(try await post(file: try await gzip(small), gzip: true) == 204)
        // 100 KiB of text compresses below 4 KiB but inflates past the limit.
        let bomb = String(repeating: "gz,s=x v=1 \(now)\n", count: 5000)
        let bombFile = try await gzip(bomb)
        #expect(try Data(contentsOf: URL(fileURLWithPath: bombFile)).count < 4096)
        #expect(try await post(file: bombFile, gzip: true) == 413)
        let plain = directory.appending("plain")
        try Data(bomb.utf8).write(to: URL(fileURLWithPath: plain))
        #expect(try await post(file: plain, gzip: false) == 413)
        let notGzip = directory.appending("not-gzip")
        try Data("gz v=1".utf8).write(to: URL(fileURLWithPath: notGzip))
        #expect(try await post(file: notGzip, gzip: true) == 400)
        let stored = try await collector.get("/api/v1/rollups?measurement=gz&field=v&start=\(now - 3600)&end=\(now + 3600)&aggregate=count", headers: [("Authorization", "Bearer \(token)")])
        #expect(stored.body.contains(#""count":20"#), "\(stored.body)")
    }
}

/// The samples acknowledged so far, shared by the writer tasks.
final class AcknowledgedCount: Sendable {
    private let count = Mutex(0)

    /// Adds `samples` and returns the new total.
    func add(_ samples: Int) -> Int {
        count.withLock { value in
            value += samples
            return value
        }
    }

    var value: Int { count.withLock { $0 } }
}

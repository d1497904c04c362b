import CollectorTesting
import Foundation
import Testing

/// The built binary, started as an operator would: real sockets, real signals, real RocksDB.
@Suite("serve: lifecycle of the real binary")
struct ServeLifecycleTests {
    let directory = TemporaryDirectory(prefix: "serve")
    var dataDirectory: String { directory.appending("data") }

    func start(_ arguments: [String] = [], environment: [String: String] = [:]) throws -> CollectorProcess {
        try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path, arguments: arguments, environment: environment)
    }

    @Test func readyThenCleanShutdownOnSIGTERM() async throws {
        let collector = try start()
        #expect(await collector.waitFor(path: "/-/ready", status: 200), "stdout: \(collector.standardOutput)\nstderr: \(collector.standardError)")
        let health = try await collector.get("/health")
        #expect(health.status == 200)
        #expect(health.body.contains(#""ready":true"#))
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
        #expect(collector.standardOutput.contains("clean shutdown complete"))
        #expect(collector.standardError.isEmpty, "stderr: \(collector.standardError)")
        #expect(FileManager.default.fileExists(atPath: dataDirectory + "/master.key"))

        // The restart after a clean shutdown reports nothing unclean.
        let again = try start()
        #expect(await again.waitFor(path: "/-/ready", status: 200))
        #expect(!again.standardOutput.contains("unclean"))
        again.send(SIGINT)
        #expect(await again.waitForExit() == 0)
    }

    /// `serve` restarts itself once with glibc's malloc tunables (request-sized buffers reused
    /// instead of faulted in again), keeps a value the operator set, and sets none with
    /// `FLASHBACK_NO_ALLOCATOR_TUNING`: read from the running process's environment.
    @Test func allocatorTunablesAreSetAtStartUnlessGiven() async throws {
        let tunables = ["MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "536870912", "MALLOC_ARENA_MAX": "2"]
        var withArenas = tunables
        withArenas["MALLOC_ARENA_MAX"] = "4"
        let cases: [(given: [String: String], expected: [String: String])] = [
            ([:], tunables),
            (["MALLOC_ARENA_MAX": "4"], withArenas),
            (["FLASHBACK_NO_ALLOCATOR_TUNING": "1"], [:]),
        ]
        for (given, expected) in cases {
            let collector = try start(environment: given)
            #expect(await collector.waitFor(path: "/-/ready", status: 200))
            let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(collector.process.processIdentifier)/environ"))
            var running: [String: String] = [:]
            for entry in environ.split(separator: 0) {
                let text = String(decoding: entry, as: UTF8.self)
                guard let equals = text.firstIndex(of: "="), text.hasPrefix("MALLOC_") else { continue }
                running[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            #expect(running == expected, "given \(given)")
            collector.send(SIGTERM)
            #expect(await collector.waitForExit() == 0)
        }
    }

    /// A crash (here SIGSEGV) must free the ports at once: the runtime's crash helper neither
    /// symbolicates for minutes nor inherits the listening sockets (issue 12, item 7), so a
    /// supervisor's restart on the same ports is ready within 5 s.
    @Test func aCrashFreesThePortsForAnImmediateRestart() async throws {
        let first = try start()
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        first.send(SIGSEGV)
        let status = await first.waitForExit(timeout: .seconds(5))
        #expect(status != nil && status != 0, "the crashed process was still running after 5 s")
        #expect(first.standardError.contains("crashed"), "no crash report on stderr: \(first.standardError.prefix(2000))")
        let second = try CollectorProcess(dataDirectory: dataDirectory, logDirectory: directory.path, httpPort: first.httpPort, udpPort: first.udpPort)
        #expect(await second.waitFor(path: "/-/ready", status: 200, timeout: .seconds(5)),
                "no restart on the same ports within 5 s: \(second.standardOutput.suffix(2000))")
        #expect(second.standardOutput.contains("unclean"))
        second.send(SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    @Test func killMinus9IsReportedAsUncleanAtTheNextStart() async throws {
        let first = try start()
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        first.send(SIGKILL)
        #expect(await first.waitForExit() != 0)

        let second = try start(["--log-format", "json"])
        #expect(await second.waitFor(path: "/-/ready", status: 200))
        let lines = second.standardOutput.split(separator: "\n")
        let unclean = lines.first { $0.contains("previous shutdown was unclean") }
        #expect(unclean != nil, "stdout: \(second.standardOutput)")
        if let unclean {
            let object = try JSONSerialization.jsonObject(with: Data(unclean.utf8)) as? [String: Any]
            #expect(object?["level"] as? String == "warning")
            #expect(object?["unclean_shutdowns_total"] as? String == "1")
        }
        second.send(SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    @Test func aSecondServeOnTheSameDataDirectoryFailsWithOneLine() async throws {
        let first = try start()
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        let second = try start()
        let status = await second.waitForExit()
        #expect(status != nil && status != 0)
        let errorLines = second.standardError.split(separator: "\n")
        #expect(errorLines.count == 1, "stderr: \(second.standardError)")
        #expect(errorLines.first?.contains("in use by another flashback-collector process") == true)
        // The first one is unaffected.
        #expect(try await first.get("/-/ready").status == 200)
        first.send(SIGTERM)
        #expect(await first.waitForExit() == 0)
    }

    @Test func aPortInUseFailsWithOneLineAndLeavesTheStoreClean() async throws {
        let first = try start()
        #expect(await first.waitFor(path: "/-/ready", status: 200))
        let other = TemporaryDirectory(prefix: "serve-other")
        let second = try CollectorProcess(dataDirectory: other.appending("data"), logDirectory: other.path, httpPort: first.httpPort)
        let status = await second.waitForExit()
        #expect(status != nil && status != 0)
        let errorLines = second.standardError.split(separator: "\n")
        #expect(errorLines.count == 1, "stderr: \(second.standardError)")
        #expect(errorLines.first?.contains("cannot listen on 127.0.0.1:\(first.httpPort) (HTTP): address already in use") == true)
        first.send(SIGTERM)
        #expect(await first.waitForExit() == 0)

        // The failed start closed its store cleanly.
        let third = try CollectorProcess(dataDirectory: other.appending("data"), logDirectory: other.path)
        #expect(await third.waitFor(path: "/-/ready", status: 200))
        #expect(!third.standardOutput.contains("unclean"))
        third.send(SIGTERM)
        #expect(await third.waitForExit() == 0)
    }

    @Test func helpShowsEveryDefaultAndEnvironmentVariable() async throws {
        let result = try await runCommand(CollectorProcess.executableURL.path, ["serve", "--help"])
        #expect(result.status == 0)
        // Help text wraps at the terminal width; compare with whitespace runs folded to one space.
        let help = result.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for expected in ["default: ./data", "FLASHBACK_DATA_DIR", "default: 127.0.0.1:8080", "FLASHBACK_HTTP_ADDRESS",
                         "default: 127.0.0.1:8089", "FLASHBACK_UDP_ADDRESS", "default: text", "FLASHBACK_LOG_FORMAT",
                         "FLASHBACK_JWT_SECRET", "FLASHBACK_JWT_PUBLIC_KEY", "FLASHBACK_MASTER_KEY_FILE", "FLASHBACK_CONFIG"] {
            #expect(help.contains(expected), "help lacks \(expected)")
        }
    }
}

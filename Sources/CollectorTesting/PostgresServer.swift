import Foundation

/// A throwaway PostgreSQL cluster for tests: Debian's `postgresql-15` (`scripts/install-deps.sh
/// --test`), `initdb` into a fresh directory, a server on a free loopback port, trust
/// authentication for the superuser `flashback`. `initdb` refuses root, so as root both run as
/// the `postgres` user the package creates. ``stop()`` and ``start()`` simulate an outage; the
/// cluster is stopped and its directory removed when the value goes away.
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    /// The cluster's data directory (and its socket and log).
    public let directory: String
    /// `postgres://flashback@127.0.0.1:<port>/postgres?sslmode=disable`
    public var url: String { "postgres://flashback@127.0.0.1:\(port)/postgres?sslmode=disable" }
    private let lock = NSLock()
    private var server: Process?

    static let binaries = "/usr/lib/postgresql/15/bin"

    /// Creates and starts a cluster; throws when PostgreSQL 15 is not installed.
    public init() async throws {
        guard FileManager.default.isExecutableFile(atPath: "\(Self.binaries)/initdb") else {
            throw OpenSSLError(description: "PostgreSQL 15 is not installed (scripts/install-deps.sh --test installs postgresql-15)")
        }
        port = freeLoopbackPort()
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("flashback-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if getuid() == 0 {
            _ = try await Self.run("/bin/chown", ["postgres:postgres", directory])
        }
        _ = try await asOwner("\(Self.binaries)/initdb", ["-D", "\(directory)/data", "-U", "flashback", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"])
        try await start()
    }

    /// Starts the server (again) on the same port and waits until it accepts connections.
    ///
    /// `postgres` runs as a child of the test process rather than through `pg_ctl start`: a
    /// daemon would inherit the descriptor on which Foundation learns that `pg_ctl` exited, and
    /// the wait would never end.
    public func start() async throws {
        let log = "\(directory)/server.log"
        if !FileManager.default.fileExists(atPath: log) {
            guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            if getuid() == 0 { try await Self.run("/bin/chown", ["postgres:postgres", log]) }
        }
        let readyBefore = readyCount
        let arguments = ["\(Self.binaries)/postgres", "-D", "\(directory)/data", "-p", String(port), "-c", "listen_addresses=127.0.0.1",
                         "-k", directory, "-c", "fsync=off", "-c", "full_page_writes=off"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: getuid() == 0 ? "/usr/sbin/runuser" : arguments[0])
        process.arguments = getuid() == 0 ? ["-u", "postgres", "--"] + arguments : Array(arguments.dropFirst())
        process.standardInput = FileHandle.nullDevice
        // Appended to, so a restart's "ready" line adds to the count instead of overwriting.
        let output = FileHandle(forWritingAtPath: log)
        output?.seekToEndOfFile()
        process.standardOutput = output
        process.standardError = output
        try launch(process)
        lock.withLock { server = process }
        // Ready when the server says so in its log (no process is started to ask: a child
        // started while another test starts one can hold descriptors Foundation waits on).
        let deadline = ContinuousClock.now.advanced(by: .seconds(60))
        while ContinuousClock.now < deadline, process.isRunning {
            if readyCount > readyBefore { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw OpenSSLError(description: "PostgreSQL did not start: \(self.log)")
    }

    /// Stops the server at once (`immediate`: as a crash would), leaving the data for ``start()``.
    public func stop() async throws {
        stopBlocking()
    }

    /// ``stop()`` on the calling thread (for `deinit`).
    private func stopBlocking() {
        guard let process = lock.withLock({ server.take() }) else { return }
        let command = Self.asOwner("\(Self.binaries)/pg_ctl", ["-D", "\(directory)/data", "-m", "immediate", "-w", "stop"])
        if let stopping = try? BackgroundCommand(command[0], Array(command.dropFirst())) { stopping.process.waitUntilExit() }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// How often the server has logged that it accepts connections.
    private var readyCount: Int {
        log.components(separatedBy: "database system is ready to accept connections").count - 1
    }

    /// What the server logged so far.
    public var log: String { (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? "" }

    /// Runs SQL with `psql` as the superuser; returns its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String) async throws -> String {
        try await Self.run("/usr/bin/psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "flashback", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
    }

    private func asOwner(_ executable: String, _ arguments: [String]) async throws -> String {
        let command = Self.asOwner(executable, arguments)
        return try await Self.run(command[0], Array(command.dropFirst()))
    }

    /// `executable arguments` run as the cluster's owner: through `runuser` when the tests run as
    /// root (`initdb` refuses root).
    private static func asOwner(_ executable: String, _ arguments: [String]) -> [String] {
        (getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [executable] + arguments
    }

    @discardableResult
    static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let result = try await runCommand(executable, arguments)
        guard result.status == 0 else {
            throw OpenSSLError(description: "\(executable) \(arguments.joined(separator: " ")) exited with \(result.status): \(result.standardError)\(result.standardOutput)")
        }
        return result.standardOutput
    }

    deinit {
        stopBlocking()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore

/// An HTTP proxy in front of a server (a TSDB's query API) that counts the requests it forwards
/// by their `X-Flashback-Stats-Route` header (else by path): a test reads the count from `GET /-/count` at once, without waiting for anyone's
/// metrics to refresh. A small Python `http.server`, stopped with the object.
public final class CountingProxy: @unchecked Sendable {
    public let port: Int
    private let process: Process

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    static let script = #"""
import http.server, json, sys, threading, urllib.request, urllib.error
target, port = sys.argv[1], int(sys.argv[2])
counts, lock = {}, threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def relay(self, method):
        if self.path == "/-/count":
            with lock: body = json.dumps(counts).encode()
            return self.reply(200, body, "application/json")
        data = None
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        elif int(self.headers.get("Content-Length") or 0) > 0:
            data = self.rfile.read(int(self.headers["Content-Length"]))
        key = self.headers.get("X-Flashback-Stats-Route") or self.path.split("?")[0]
        with lock: counts[key] = counts.get(key, 0) + 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")}
        try:
            with urllib.request.urlopen(urllib.request.Request(target + self.path, data=data, method=method, headers=headers), timeout=60) as r:
                self.reply(r.status, r.read(), r.headers.get("Content-Type", "application/json"))
        except urllib.error.HTTPError as e:
            self.reply(e.code, e.read(), e.headers.get("Content-Type", "application/json"))
    def reply(self, status, body, kind):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.relay("GET")
    def do_POST(self): self.relay("POST")
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""#

    /// A proxy to `target` (a base URL) on a free loopback port, ready when this returns.
    public init(target: String) async throws {
        port = freeLoopbackPort()
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script, target, "\(port)"]
        try launch(process)
        let ready = try await eventually(timeout: .seconds(30)) { (try? await self.counts()) != nil }
        guard ready else { throw OpenSSLError(description: "the counting proxy did not start") }
    }

    deinit { stop() }

    /// Requests forwarded so far, by route header (else path).
    public func counts() async throws -> [String: Int] {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: baseURL + "/-/count"), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode([String: Int].self, from: Data(body.readableBytesView))
    }

    /// Requests forwarded so far.
    public func total() async throws -> Int { try await counts().values.reduce(0, +) }

    /// SIGKILL: a child spawned from a test thread may have SIGTERM blocked (it holds nothing).
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

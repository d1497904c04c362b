import CollectorModel
import CollectorTesting
import Foundation
import Testing

/// The hostile-input tier (issue 12, DESIGN.md §5): the built binary, fed over real sockets with
/// what a hostile bridge node, member or UDP sender may send — extreme integers and dates on every
/// endpoint, thousands of list items, 100,000-level JSON, 1 MB strings, invalid UTF-8, `%00` and
/// 10 kB ids, a gzip bomb, lying `Content-Length`s, garbage `Authorization` headers and garbage
/// datagrams. After every request the process must still serve; no answer may be a 5xx (503 for
/// overload aside); every 4xx must be JSON `{success:false, message}`.
@Suite("hostile input: the real binary", .serialized)
struct HostileInputTests {
    let directory = TemporaryDirectory(prefix: "hostile")

    /// What the tier found wrong, one line per request.
    final class Findings: @unchecked Sendable {
        var problems: [String] = []
        var requests = 0
    }

    struct Target {
        var port: Int
        var findings: Findings

        /// Sends one request and records what is wrong with its answer.
        func check(_ label: String, _ bytes: [UInt8], expectJSON: Bool = true, status expected: Int? = nil) async {
            findings.requests += 1
            let answer: RawHTTP.Answer
            do {
                answer = try await RawHTTP.send(bytes, port: port)
            } catch {
                findings.problems.append("\(label): no connection (\(error)) — the process may be down")
                return
            }
            if let expected, answer.status != expected {
                findings.problems.append("\(label): expected \(expected), got \(answer)")
            }
            if answer.status >= 500, answer.status != 503 {
                findings.problems.append("\(label): \(answer)")
            } else if answer.status == 0 {
                // A request the server refused at the protocol level may be closed without an
                // answer (HTTP/1.1 parse error); that is not a crash, but the server must live on.
            } else if (400..<500).contains(answer.status), expectJSON {
                let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
                if object?["success"] as? Bool != false || !(object?["message"] is String) {
                    findings.problems.append("\(label): 4xx is not {success:false, message}: \(answer)")
                }
            }
        }

        func get(_ target: String, _ headers: [(String, String)], label: String? = nil) async {
            await check(label ?? "GET \(target.prefix(120))", RawHTTP.request(method: "GET", target: target, headers: headers))
        }

        func send(_ method: String, _ target: String, _ headers: [(String, String)], body: [UInt8], label: String? = nil) async {
            await check(label ?? "\(method) \(target.prefix(80)) body \(String(decoding: body.prefix(60), as: UTF8.self))",
                  RawHTTP.request(method: method, target: target, headers: headers + [("Content-Type", "application/json")], body: body))
        }
    }

    static let integers = ["9223372036854775807", "-9223372036854775808", "9223372036854775808", "18446744073709551616", "1e309", "-1e309",
                           "NaN", "-0", "0x10", "%201", "1%20", "+1", "00000000000000000000001", "1.5", "", "undefined", "null", "%00",
                           String(repeating: "9", count: 10_000)]
    static let dates = ["0000-01-01", "1677-09-21", "1677-09-21T00:12:43Z", "2262-04-11", "2262-04-12T00:00:00Z", "9999-12-31",
                        "99999-01-01", "%2B99999-01-01T00:00:00Z", "2024-02-30", "2024-02-01T25:00:00Z", "2024-02-01T00:00:00%2B99:00",
                        "2024-02-01T00:00:00-99:59", "31022024", "00000000", "99999999", "1022024", "31129999", "2024-02-01T00:00:00.9999999999999Z",
                        String(repeating: "2", count: 10_000)]
    static let jsonNumbers = ["9223372036854775807", "-9223372036854775808", "18446744073709551616", "1e309", "-1e309", "1e-400", "-0",
                              "0.1e99999", "123456789012345678901234567890", "\"NaN\"", "\"Infinity\"", "null", "[]", "{}", "true"]

    @Test func everyEndpointSurvivesHostileInput() async throws {
        let collector = try CollectorProcess(dataDirectory: directory.appending("data"), logDirectory: directory.path,
                                             arguments: ["--udp-auth", "hmac", "--max-body-size", "4194304"])
        #expect(await collector.waitFor(path: "/-/ready", status: 200))
        let owner = try await collector.authorization(organization: "org-1")
        let user = try await collector.authorization(organization: "org-1", role: .user)

        // Something to aim at: a node (signed with an organization key), a bucket, a repository, a key.
        let created = try await collector.get("/organization/org-1/key", headers: owner + [("Accept", "application/x-pem-file")], method: "POST")
        let signer = try OpenSSLSigner(privateKeyPEM: created.body, directory: directory.path)
        let timestamp = String(Int64(Date().timeIntervalSince1970))
        let signature = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: timestamp)
        let registered = try await collector.get("/register", headers: [("Content-Type", "application/json")], method: "POST",
                                                 body: #"{"provider":"AWS","region":"eu-central-1","ip":"203.0.113.10","status":"running","version":"1","timestamp":\#(timestamp),"signature":"\#(signature)","id_org":"org-1"}"#)
        let registration = try #require(try JSONSerialization.jsonObject(with: Data(registered.body.utf8)) as? [String: Any])
        let nodeToken = try #require(registration["nodeToken"] as? String, "registration answered \(registered.status): \(registered.body)")
        let nodeID = try #require(registration["nodeId"] as? String)
        let node = [("Authorization", "Bearer \(nodeToken)")]
        let bucket = try await collector.get("/bucket", headers: owner + [("Content-Type", "application/json")], method: "POST",
                                             body: #"{"name":"b","bucket":"b","storageType":"S3","workspaceId":"w"}"#)
        let bucketID = try #require((try JSONSerialization.jsonObject(with: Data(bucket.body.utf8)) as? [String: Any])?["bucketId"] as? String)
        let repo = try await collector.get("/repo", headers: owner + [("Content-Type", "application/json")], method: "POST",
                                           body: #"{"name":"r","storageType":"S3","mode":"NORMAL","workspaceId":"w","repoBuckets":[{"folder":"","bucketId":"\#(bucketID)"}]}"#)
        let repoID = try #require((try JSONSerialization.jsonObject(with: Data(repo.body.utf8)) as? [String: Any])?["repoId"] as? String)
        let key = try await collector.get("/repo/\(repoID)/apikey", headers: owner + [("Content-Type", "application/json")], method: "POST",
                                          body: #"{"name":"k","accessType":"WRITE"}"#)
        let keyID = try #require((try JSONSerialization.jsonObject(with: Data(key.body.utf8)) as? [String: Any])?["id"] as? String)

        let findings = Findings()
        let target = Target(port: collector.httpPort, findings: findings)
        let callers: [(String, [(String, String)])] = [("owner", owner), ("user", user), ("node", node)]

        // 1. Query parameters: every GET with every extreme value, as each kind of caller.
        let queries: [(path: String, names: [String])] = [
            ("/api/v1/rollups?measurement=bucket_traffic&field=upl_bytes", ["start", "end", "resolution", "aggregate", "tag.bucket"]),
            ("/stats/daily", ["startDate", "endDate", "bucketId", "unitId", "repoId", "hosts"]),
            ("/stats/minute", ["startDate", "endDate", "bucketId", "repoId", "host"]),
            ("/stats/nodes/minute", ["startDate", "endDate", "bucketId", "unitId"]),
            ("/stats/nodes/daily", ["startDate", "endDate", "bucketId"]),
            ("/bucket/stats", ["bucketId", "unitId"]), ("/unit/stats", ["unitId"]), ("/repo/stats", ["repoId"]),
            ("/bucket", ["workspaceId"]), ("/repo", ["repoId", "workspaceId"]), ("/node", ["nodeServices"]),
            ("/bucket/available", ["workspaceId"]),
        ]
        for (path, names) in queries {
            for name in names {
                for value in Self.integers + Self.dates {
                    let separator = path.contains("?") ? "&" : "?"
                    for (who, headers) in callers where who != "node" || path.hasPrefix("/api") {
                        await target.get("\(path)\(separator)\(name)=\(value)", headers, label: "GET \(path) \(name)=\(value.prefix(40)) as \(who)")
                    }
                }
            }
            // Ranges: both ends extreme at once.
            for start in ["0", "-9223372036854775808", "1677-09-21", "0000-01-01"] {
                for end in ["9223372036854775807", "9999-12-31", "2262-04-12T00:00:00Z", "99999999"] {
                    let (a, b) = path.contains("rollups") ? ("start", "end") : ("startDate", "endDate")
                    let separator = path.contains("?") ? "&" : "?"
                    await target.get("\(path)\(separator)\(a)=\(start)&\(b)=\(end)", owner)
                }
            }
        }
        // Lists of thousands of items, and 10 kB ids in lists.
        let many = (0..<5_000).map { "b\($0)" }.joined(separator: ",")
        for path in ["/stats/daily?bucketId=", "/stats/nodes/minute?bucketId=", "/stats/nodes/daily?unitId=", "/bucket/stats?bucketId=",
                     "/repo/stats?repoId=", "/stats/minute?hosts=", "/api/v1/rollups?measurement=m&field=f&tag.x="] {
            await target.get(path + many, owner, label: "GET \(path) with 5000 items")
            await target.get(path + String(repeating: "x", count: 10_000), owner, label: "GET \(path) with a 10 kB id")
            await target.get(path + "%00%ff%fe", owner, label: "GET \(path) with %00 and invalid UTF-8")
        }

        // 2. Path parameters: 10 kB ids, %00, invalid UTF-8, traversal.
        let ids = [String(repeating: "a", count: 10_000), "%00", "a%00b", "%ff%fe%fd", "..%2f..%2fetc", "%", "%zz", "%F0%9F%98%80", "%E2%80%AEx"]
        for id in ids {
            let label = "id \(id.prefix(20))"
            await target.get("/bucket/\(id)/status", user, label: "GET /bucket/{id}/status \(label)")
            await target.send("POST", "/bucket/\(id)/stats", user, body: Array(#"{"day":"2024-01-01"}"#.utf8), label: "POST /bucket/{id}/stats \(label)")
            await target.send("POST", "/bucket/\(id)/validate", owner, body: [], label: "POST /bucket/{id}/validate \(label)")
            await target.send("PUT", "/bucket/\(id)", owner, body: Array(#"{"name":"x"}"#.utf8), label: "PUT /bucket/{id} \(label)")
            await target.check("DELETE /bucket/{id} \(label)", RawHTTP.request(method: "DELETE", target: "/bucket/\(id)", headers: user))
            await target.send("PUT", "/repo/\(id)", owner, body: Array(#"{"name":"x"}"#.utf8), label: "PUT /repo/{id} \(label)")
            await target.get("/repo/\(id)/apikey", owner, label: "GET /repo/{id}/apikey \(label)")
            await target.send("PUT", "/repo/\(repoID)/apikey/\(id)", owner, body: Array(#"{"name":"x"}"#.utf8), label: "PUT apikey \(label)")
            await target.get("/organization/\(id)/key", owner, label: "GET /organization/{id}/key \(label)")
            await target.get("/organization/org-1/nodes", owner)
            await target.check("DELETE node \(label)", RawHTTP.request(method: "DELETE", target: "/organization/org-1/node/\(id)", headers: owner))
            await target.check("DELETE key \(label)", RawHTTP.request(method: "DELETE", target: "/organization/org-1/key/\(id)", headers: owner))
        }

        // Raw (not percent-encoded) UTF-8 and control bytes in the request line or a header are
        // not HTTP: the HTTP parser refuses them before any route (a 400 without a body is fine).
        await target.check("raw UTF-8 in the path", Array("GET /bucket/\u{202E}x/status HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".utf8), expectJSON: false)
        await target.check("NUL in a header", Array("GET /whoami HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer \u{0}\r\nConnection: close\r\n\r\n".utf8), expectJSON: false)
        await target.check("CR in a header", Array("GET /whoami HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer a\rb\r\nConnection: close\r\n\r\n".utf8), expectJSON: false)

        // 3. JSON bodies: every POST/PUT with hostile documents.
        let deep = Array(String(repeating: "[", count: 100_000).utf8) + Array(String(repeating: "]", count: 100_000).utf8)
        let deepObject = Array(String(repeating: #"{"a":"#, count: 100_000).utf8) + Array("1".utf8) + Array(String(repeating: "}", count: 100_000).utf8)
        let megabyte = String(repeating: "x", count: 1 << 20)
        var bodies: [(String, [UInt8])] = [
            ("deep array", deep), ("deep object", deepObject), ("empty", []), ("not JSON", Array("hello".utf8)),
            ("invalid UTF-8", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]), ("NUL", Array("{\"a\":\"\u{0}\"}".utf8)),
        ]
        let bigString = #"{"name":"\#(megabyte)","bucket":"\#(megabyte)","ip":"\#(megabyte)","region":"r","timestamp":1,"signature":"\#(megabyte)"}"#
        bodies.append(("1 MB string", Array(bigString.utf8)))
        let bigArray = "[" + Array(repeating: "{}", count: 100_000).joined(separator: ",") + "]"
        bodies.append(("100k array", Array(bigArray.utf8)))
        bodies.append(("wrong types", Array(#"{"name":1,"bucket":[],"storageType":{},"ip":true,"region":null,"timestamp":"x","signature":5,"buckets":"no","day":7}"#.utf8)))
        bodies.append(("unicode escapes", Array(#"{"name":"\ud800","bucket":"\udfff\u0000"}"#.utf8)))
        for number in Self.jsonNumbers {
            let fields: [String] = ["timestamp", "nodeServices", "latencyMs", "upl_bytes", "mode", "day"].map { "\"\($0)\":\(number)" }
            let bucketsField = #""buckets":[{"unitId":"b","status":"ONLINE","latencyMs":\#(number),"createdAt":\#(number)}]"#
            let text: String = "{" + fields.joined(separator: ",") + #","ip":"1.2.3.4","region":"r","signature":"AAAA","# + bucketsField + "}"
            bodies.append(("number \(number)", Array(text.utf8)))
        }
        let posts: [(method: String, path: String, headers: [(String, String)])] = [
            ("POST", "/register", []), ("POST", "/unregister", []), ("POST", "/status", []), ("POST", "/node/status", []),
            ("POST", "/stats/report", node), ("POST", "/bucket", owner), ("PUT", "/bucket/\(bucketID)", owner),
            ("POST", "/bucket/\(bucketID)/validate", owner), ("POST", "/bucket/\(bucketID)/stats", user), ("POST", "/unit/\(bucketID)/stats", user),
            ("POST", "/repo", owner), ("PUT", "/repo/\(repoID)", owner), ("POST", "/repo/\(repoID)/apikey", owner),
            ("PUT", "/repo/\(repoID)/apikey/\(keyID)", owner), ("POST", "/apikey/authorize", node),
        ]
        for (method, path, headers) in posts {
            for (name, body) in bodies {
                await target.send(method, path, headers, body: body, label: "\(method) \(path) \(name)")
            }
            // Traffic records with every extreme number in every field, one at a time.
            if path == "/stats/report" {
                for number in Self.jsonNumbers {
                    for field in ["timestamp", "upl_bytes", "dwl_bytes", "size_change", "requests", "latency_ms"] {
                        await target.send(method, path, headers, body: Array(#"[{"unitId":"b","upl_bytes":1,"\#(field)":\#(number)}]"#.utf8))
                    }
                }
            }
        }
        // Signed messages with every extreme timestamp, and status reports with every extreme date.
        for value in Self.jsonNumbers + Self.dates.map({ "\"\($0)\"" }) {
            for path in ["/register", "/unregister", "/status"] {
                await target.send("POST", path, [], body: Array(#"{"ip":"203.0.113.10","region":"eu-central-1","timestamp":\#(value),"signature":"AAAA","id_org":"org-1","buckets":[]}"#.utf8))
            }
            let stamp = Int64(Date().timeIntervalSince1970)
            let signed = try await signer.signNodeMessage(ip: "203.0.113.10", region: "eu-central-1", timestamp: String(stamp))
            await target.send("POST", "/status", [], body: Array(#"{"ip":"203.0.113.10","region":"eu-central-1","timestamp":\#(stamp),"signature":"\#(signed)","id_org":"org-1","buckets":[{"unitId":"b","status":"ONLINE","createdAt":\#(value)}]}"#.utf8))
            await target.send("POST", "/bucket/\(bucketID)/stats", user, body: Array(#"{"day":\#(value)}"#.utf8))
        }
        // Authorize: SigV4 headers with hostile parts.
        for authorization in ["AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=", "AWS4-HMAC-SHA256 Credential=////,SignedHeaders=,Signature=",
                              "AWS4-HMAC-SHA256 Credential=AK/99999999/r/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=zz",
                              String(repeating: "A", count: 100_000), "AWS4-HMAC-SHA256 Credential=\(String(repeating: "/", count: 10_000))"] {
            for date in ["20240101T000000Z", "99999999T999999Z", "00000000T000000Z", "2024010", "-0000001T000000Z", ""] {
                let body: [String: Any] = ["method": "GET", "path": "/b/k", "query": "", "headers": ["authorization": authorization, "x-amz-date": date, "host": "h"],
                                           "repoId": repoID, "bucket": "b", "key": "k"]
                await target.send("POST", "/apikey/authorize", node, body: Array(try JSONSerialization.data(withJSONObject: body)))
            }
        }

        // 4. Garbage Authorization headers on authenticated routes.
        for value in ["Bearer", "Bearer ", "Bearer  ", "Basic dXNlcjpwYXNz", "Bearer \(String(repeating: "a", count: 10_000))", "Bearer a.b.c",
                      "Bearer eyJhbGciOiJub25lIn0.eyJvcmciOiJvcmctMSIsInJvbGUiOjI1NX0.", "Token fbn1.garbage", "Bearer fbn1.", "bearer \u{00e9}",
                      "Bearer \(nodeToken)x", "Token", "Bearer %00"] {
            for path in ["/whoami", "/bucket", "/stats/daily", "/api/v1/rollups?measurement=m&field=f", "/node", "/metrics"] {
                await target.get(path, [("Authorization", value)], label: "GET \(path) Authorization \(value.prefix(30))")
            }
            await target.check("POST /write Authorization \(value.prefix(30))",
                         RawHTTP.request(method: "POST", target: "/write", headers: [("Authorization", value)], body: Array("m f=1".utf8)))
            await target.send("POST", "/apikey/authorize", [("Authorization", value)], body: Array("{}".utf8), label: "authorize Authorization \(value.prefix(30))")
        }

        // 5. Line protocol: extreme timestamps and values, a gzip bomb, lying lengths.
        for precision in ["ns", "us", "ms", "s", "h", "", "%00", String(repeating: "s", count: 10_000)] {
            for stamp in Self.integers.prefix(12) {
                await target.check("write precision=\(precision.prefix(10)) ts=\(stamp.prefix(20))",
                             RawHTTP.request(method: "POST", target: "/write?precision=\(precision)", headers: node,
                                             body: Array("m,bucket=b f=1,g=9223372036854775807i,h=-9223372036854775808i,u=18446744073709551615u,s=\"x\" \(stamp)".utf8)))
            }
        }
        let bomb = try await Self.gzip(count: 64 << 20)
        await target.check("gzip bomb", RawHTTP.request(method: "POST", target: "/write", headers: node + [("Content-Encoding", "gzip")], body: bomb), status: 413)
        await target.check("not gzip", RawHTTP.request(method: "POST", target: "/write", headers: node + [("Content-Encoding", "gzip")], body: Array("plain".utf8)))
        await target.check("gzip on JSON", RawHTTP.request(method: "POST", target: "/stats/report", headers: node + [("Content-Encoding", "gzip")], body: bomb))
        for (path, headers) in [("/write", node), ("/stats/report", node), ("/bucket", owner), ("/register", [])] {
            // Says 1,000 bytes, sends 10, closes: the server must give up on the body, not hang or fail.
            await target.check("\(path) lying short", RawHTTP.request(method: "POST", target: path, headers: headers + [("Content-Length", "1000")], body: Array("m f=1 1234".utf8)),
                         status: 400)
            // Says 4, sends more: the rest is a second (garbage) request.
            await target.check("\(path) lying long", RawHTTP.request(method: "POST", target: path, headers: headers + [("Content-Length", "4")], body: Array("m f=1 1234\r\n\r\nGARBAGE".utf8)),
                         expectJSON: false)
            await target.check("\(path) huge Content-Length", RawHTTP.request(method: "POST", target: path, headers: headers + [("Content-Length", "99999999999999999999")], body: Array("x".utf8)),
                         expectJSON: false)
            await target.check("\(path) negative Content-Length", RawHTTP.request(method: "POST", target: path, headers: headers + [("Content-Length", "-1")], body: Array("x".utf8)),
                         expectJSON: false)
            await target.check("\(path) over the body limit", RawHTTP.request(method: "POST", target: path, headers: headers, body: [UInt8](repeating: 0x61, count: 5 << 20)),
                         status: 413)
        }
        await target.check("raw garbage", Array("\u{0}\u{1}GARBAGE\r\n\r\n".utf8), expectJSON: false)
        await target.check("unknown method", RawHTTP.request(method: "BREW", target: "/bucket", headers: owner), expectJSON: false)

        // 6. Garbage datagrams (the listener is in hmac mode): none may stop the process.
        let datagrams: [[UInt8]] = [
            [], [0], [UInt8](repeating: 0xFF, count: 65_000), Array("#fb1 ".utf8), Array("#fb1 \n".utf8), Array("#fb1 a b c d e\nm f=1".utf8),
            Array("#fb1 \(nodeID) 9223372036854775807 AAAA\nm f=1".utf8), Array("#fb1 \(nodeID) -9223372036854775808 AAAA\nm f=1".utf8),
            Array("#fb1 \(nodeID) 1e309 AAAA\nm f=1".utf8), Array("#fb1 \(nodeID) \(Int64(Date().timeIntervalSince1970)) !!!!\nm f=1".utf8),
            Array("#fb1 \(String(repeating: "n", count: 60_000)) 1 AAAA\nm f=1".utf8), Array("m f=1 9223372036854775807".utf8),
        ]
        for datagram in datagrams { RawHTTP.datagram(datagram, port: collector.udpPort) }

        // The process is alive and serving, and nothing it answered was wrong.
        let healthy = try await collector.get("/-/healthy")
        #expect(healthy.status == 200)
        let ready = try await collector.get("/-/ready")
        #expect(ready.status == 200)
        let metrics = try await collector.get("/metrics")
        #expect(metrics.body.contains("flashback_udp_datagrams_total{outcome=\"bad_header\"}"), "the garbage datagrams were not counted")
        #expect(metrics.body.contains(#"flashback_http_requests_total{method="GET",route="/stats/daily",status="4xx"}"#),
                "4xx answers are not counted by route")
        #expect(findings.requests > 2_000)
        #expect(findings.problems.isEmpty, "\(findings.problems.count) of \(findings.requests) requests went wrong:\n\(findings.problems.prefix(40).joined(separator: "\n"))")
        #expect(!collector.standardError.contains("Fatal error") && !collector.standardError.contains("Swift runtime failure"))
        collector.send(SIGTERM)
        #expect(await collector.waitForExit() == 0)
    }

    /// `count` zero bytes, gzipped by the system's `gzip` (a bomb: ~1,000 : 1).
    static func gzip(count: Int) async throws -> [UInt8] {
        let directory = TemporaryDirectory(prefix: "bomb")
        let path = directory.appending("bomb.gz")
        let result = try await runCommand("/bin/sh", ["-c", "head -c \(count) /dev/zero | gzip -c > \(path)"])
        guard result.status == 0, let data = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileWriteUnknown) }
        return Array(data)
    }
}

import AsyncHTTPClient
import CollectorModel
import Foundation
import Metrics
import NIOCore
import NIOHTTP1
import Stats
import Synchronization
import TimeSeries

/// The Prometheus query API as the source asks it: combined queries, `query_range` and `query`,
/// and every request through the endpoints in order of preference (HA failover), counted by the
/// stats route it answers.
extension PrometheusRollupSource {
    enum Stat: Sendable {
        case count, sum, last, lastTime, onlineMinutes

        func apply(_ value: Double, to rollup: inout FieldRollup) {
            switch self {
            case .count: rollup.count = UInt64(clamping: Int64(saturating: value.rounded()))
            case .sum: rollup.sum = value
            case .last: rollup.last = value
            case .lastTime: rollup.lastTime = PrometheusRollupSource.nanoseconds(ofSeconds: value)
            case .onlineMinutes: rollup.onlineMinutes = UInt64(clamping: Int64(saturating: value.rounded()))
            }
        }
    }

    /// The label that tells the parts of a combined query apart (``combine(_:budget:)``).
    static let partLabel = "__fb_part"

    /// `expressions` as few queries as the length budget allows: each part wrapped in
    /// `label_replace(…, "__fb_part", "<index>", "", "")` and the parts joined with `or`, so that
    /// one request answers every statistic of every field of a batch and each result series says
    /// which part it answers. A part longer than the budget is a request of its own.
    static func combine(_ expressions: [String], budget: Int) -> [(parts: Range<Int>, query: String)] {
        var out: [(parts: Range<Int>, query: String)] = []
        var start = 0
        var query = ""
        for (index, expression) in expressions.enumerated() {
            let part = "label_replace(\(expression), \"\(partLabel)\", \"\(index)\", \"\", \"\")"
            if !query.isEmpty, query.count + 4 + part.count > budget {
                out.append((start..<index, query))
                start = index
                query = ""
            }
            query += query.isEmpty ? part : " or " + part
        }
        if !query.isEmpty { out.append((start..<expressions.count, query)) }
        return out
    }

    /// The part a result series of a combined query answers, with that label removed.
    static func part(of labels: inout [String: String], in parts: Range<Int>) -> Int? {
        guard let text = labels.removeValue(forKey: partLabel), let index = Int(text), parts.contains(index) else { return nil }
        return index
    }

    /// Each of `expressions` evaluated at the last millisecond of each period from `first` to
    /// `last`, in as few requests as ``combine(_:budget:)`` makes: each result series with its
    /// part, and points as (period start, value).
    func rangeParts(_ expressions: [String], first: Int64, last: Int64, period: Int64, memo: Bool = false,
                    resolve: (@Sendable ([QueryAnswer.Series]) -> [UInt64?])? = nil) async throws -> [QueryAnswer.Series] {
        var out: [QueryAnswer.Series] = []
        for request in Self.combine(expressions, budget: settings.maxQueryLength) {
            let answer = try await answer("/api/v1/query_range", memo: memo, what: "query_range", resolve: resolve, [
                "query": request.query,
                "start": Self.seconds(Double(first + period) - 0.001),
                "end": Self.seconds(Double(last + period) - 0.001),
                "step": "\(period)s",
                // VictoriaMetrics aligns start and end to the step for its cache unless told not to.
                "nocache": "1",
            ])
            for var series in answer.series {
                guard let part = series.part, request.parts.contains(part) else { continue }
                // The evaluation time is the period's last millisecond.
                series.points = series.points.map { time, value in (Double(Int64(saturating: (time + 0.001).rounded()).subtractingSaturated(period)), value) }
                out.append(series)
            }
        }
        return out
    }

    /// Each of `expressions` at `time`, combined like ``rangeParts(_:first:last:period:memo:)``:
    /// each result series with its part and one point.
    func instantParts(_ expressions: [String], time: String, memo: Bool = false,
                      resolve: (@Sendable ([QueryAnswer.Series]) -> [UInt64?])? = nil) async throws -> [QueryAnswer.Series] {
        var out: [QueryAnswer.Series] = []
        for request in Self.combine(expressions, budget: settings.maxQueryLength) {
            let answer = try await answer("/api/v1/query", memo: memo, what: "query", resolve: resolve, ["query": request.query, "time": time, "nocache": "1"])
            for series in answer.series {
                guard let part = series.part, request.parts.contains(part), !series.points.isEmpty else { continue }
                out.append(series)
            }
        }
        return out
    }

    /// `query` at `time`: each result series' labels (without `__name__`) and value.
    func query(_ query: String, time: String) async throws -> [([String: String], Double)] {
        let answer = try await answer("/api/v1/query", memo: false, what: "query", resolve: nil, ["query": query, "time": time, "nocache": "1"])
        return try answer.series.map { series in
            guard let point = series.points.first else { throw StatsSourceError.malformed("query value") }
            return (series.labels, point.1)
        }
    }

    /// `POST path` with a form body, its answer read; with `memo`, an answer of the same request
    /// kept in ``AnswerMemo`` is used while it is young enough.
    /// `resolve` gives each series its id (once, before an answer is kept).
    func answer(_ path: String, memo: Bool, what: String, resolve: (@Sendable ([QueryAnswer.Series]) -> [UInt64?])?,
                _ parameters: [String: String]) async throws -> QueryAnswer {
        let fetch = { [self] () async throws -> QueryAnswer in
            let body = try await post(path, parameters)
            var answer = try body.withUnsafeReadableBytes { try QueryAnswer($0, what: what) }
            if let resolve {
                for (index, id) in resolve(answer.series).enumerated() { answer.series[index].id = id }
            }
            return answer
        }
        guard memo else { return try await fetch() }
        // What is kept is read by canonical labels only: the label maps are dropped.
        let fetchKept = { () async throws -> QueryAnswer in
            var answer = try await fetch()
            for index in answer.series.indices { answer.series[index].labels = [:] }
            return answer
        }
        let key = path + "?" + Self.form(parameters)
        switch answers.lookup(key) {
        case .fresh(let kept):
            return kept
        case .stale(let kept, let refresh):
            if refresh {
                Task {
                    do {
                        answers.store(key, try await fetchKept())
                    } catch {
                        answers.refreshFailed(key)
                    }
                }
            }
            return kept
        case .missing:
            let fetched = try await fetchKept()
            answers.store(key, fetched)
            return fetched
        }
    }

    /// Names the stats route a request answers (what `flashback_stats_source_requests_total`
    /// counts it under), for the TSDB's or a proxy's logs.
    public static let routeHeader = "X-Flashback-Stats-Route"

    /// `GET path` answered as a JSON object whose `status` is `success`.
    func get(_ path: String, _ parameters: [String: String]) async throws -> [String: Any] {
        let query = parameters.isEmpty ? "" : "?" + Self.form(parameters)
        let body = try await execute(path) { endpoint in
            var request = HTTPClientRequest(url: endpoint.url + path + query)
            for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
            request.headers.add(name: Self.routeHeader, value: StatsRoute.current)
            return request
        }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any],
              object["status"] as? String == "success" else {
            throw StatsSourceError.malformed(path)
        }
        return object
    }

    /// `POST path` with a form body: the answer's bytes (an HTTP 200).
    func post(_ path: String, _ parameters: [String: String]) async throws -> ByteBuffer {
        let body = Self.form(parameters)
        return try await execute(path) { endpoint in
            var request = HTTPClientRequest(url: endpoint.url + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            for header in endpoint.headers { request.headers.add(name: header.name, value: header.value) }
            request.headers.add(name: Self.routeHeader, value: StatsRoute.current)
            request.body = .bytes(ByteBuffer(string: body))
            return request
        }
    }

    /// Asks the preferred endpoint, and on a connection error, a timeout or a 5xx (429 too) the
    /// next, within one request's timeout: each try may take half of what is left, the last all
    /// of it. The endpoint that answers becomes the preferred one.
    func execute(_ path: String, _ make: (Endpoint) -> HTTPClientRequest) async throws -> ByteBuffer {
        let endpoints = settings.endpoints
        let first = min(max(0, preferred.load(ordering: .relaxed)), endpoints.count - 1)
        let deadline = NIODeadline.now() + TimeAmount(settings.timeout)
        var failures: [String] = []
        for step in 0..<endpoints.count {
            let index = (first + step) % endpoints.count
            let left = deadline - .now()
            let timeout = step == endpoints.count - 1 ? left : .nanoseconds(left.nanoseconds / 2)
            switch try await attempt(make(endpoints[index]), path, timeout: timeout) {
            case .answer(let object):
                if index != first { preferred.store(index, ordering: .relaxed) }
                return object
            case .failed(let reason):
                failures.append(endpoints.count > 1 ? "\(endpoints[index].url): \(reason)" : reason)
            }
        }
        throw StatsSourceError.unavailable("\(path): " + failures.joined(separator: "; "))
    }

    enum Attempt {
        case answer(ByteBuffer)
        /// Worth asking another endpoint.
        case failed(String)
    }

    func attempt(_ request: HTTPClientRequest, _ path: String, timeout: TimeAmount) async throws -> Attempt {
        let response: HTTPClientResponse
        let body: ByteBuffer
        countRequest()
        do {
            response = try await client.execute(request, timeout: max(timeout, .milliseconds(1)))
            body = try await response.body.collect(upTo: 256 << 20)
        } catch {
            return .failed("\(error)")
        }
        // A 200 is read by the caller (the query answers in one pass); an error answer's reason
        // goes into the message.
        guard response.status == .ok else {
            let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
            let reason = (object?["error"] as? String) ?? String(buffer: body).prefix(200).description
            let failure = "answered HTTP \(response.status.code): \(reason.prefix(300))"
            if response.status.code >= 500 || response.status == .tooManyRequests { return .failed(failure) }
            throw StatsSourceError.refused(status: Int(response.status.code), "\(path) \(failure)")
        }
        return .answer(body)
    }
}

import CollectorModel
import Foundation
import RemoteWrite
import Stats
import Synchronization
import TimeSeries

/// Which series exist, asked of `/api/v1/series` and kept: the first question of an
/// (organization, measurement) reads the whole retention; after that the list is refreshed in
/// the background at most every ``PrometheusRollupSource/Settings/seriesRefresh`` over the
/// newest-sample window (a series appears in the stats at most that long after its first sample
/// is queryable, plus one refresh). Each metric name is asked on its own, and a question the TSDB
/// refuses with 422 (over VictoriaMetrics' `-search.maxSeries`, Mimir's series limits) is asked
/// again in parts by the first characters of the bucket id, so no organization is too large
/// for the TSDB's defaults. These requests are counted under the route `series-lookup`.
extension PrometheusRollupSource {
    struct LookupState {
        var refreshed: Date?
        var refreshing = false
    }

    /// The route series lookups are counted under.
    public static let seriesLookupRoute = "series-lookup"

    public func series(organization: String, measurement: String, from offset: Int) async throws -> (total: Int, new: [(id: UInt64, key: SeriesKey)]) {
        let key = organization + "\u{0}" + measurement
        let now = clock()
        let state = lookups.withLock { states -> LookupState? in
            guard var state = states[key] else { return nil }
            if let refreshed = state.refreshed, now.timeIntervalSince(refreshed) >= settings.seriesRefresh, !state.refreshing {
                state.refreshing = true
                states[key] = state
                var started = state
                started.refreshed = nil
                return started
            }
            return state
        }
        switch state {
        case nil:
            // Never asked: the whole retention, waited for.
            try await lookUp(organization: organization, measurement: measurement, since: now.timeIntervalSince1970 - settings.retention, now: now)
        case .some(let state) where state.refreshed == nil:
            // Stale: refreshed over the newest-sample window while this request answers from the list.
            Task {
                try? await self.lookUp(organization: organization, measurement: measurement,
                                       since: now.timeIntervalSince1970 - settings.latestLookback - 3600, now: now)
                self.lookups.withLock { $0[key]?.refreshing = false }
            }
        default:
            break
        }
        return table.withLock { table in
            let ids = table.byMeasurement[key] ?? []
            guard offset < ids.count else { return (ids.count, []) }
            return (ids.count, ids[max(0, offset)...].compactMap { id in table.series[id].map { (id, $0.key) } })
        }
    }

    /// Adds the series of (`organization`, `measurement`) with samples since `since` to the table.
    private func lookUp(organization: String, measurement: String, since: TimeInterval, now: Date) async throws {
        var labelSets: [String: [String: String]] = [:]
        try await StatsRoute.$current.withValue(Self.seriesLookupRoute) {
            for name in Self.metricNameMatchers(measurement: measurement) {
                let base = "\(name),\(PrometheusNames.organizationLabel)=\"\(Self.escape(organization))\""
                for var labels in try await seriesInParts(base, prefix: "", depth: 0, start: since, end: now.timeIntervalSince1970 + 3600) {
                    labels.removeValue(forKey: "__name__")
                    // A public node's series has no organization label; others must match exactly.
                    guard (labels[PrometheusNames.organizationLabel] ?? "") == organization else { continue }
                    labelSets[Self.canonical(labels)] = labels
                }
            }
        }
        let key = organization + "\u{0}" + measurement
        table.withLock { table in
            for (canonical, labels) in labelSets.sorted(by: { $0.key < $1.key }) {
                let idKey = measurement + "\u{0}" + canonical
                guard table.ids[idKey] == nil else { continue }
                var tags = labels
                tags.removeValue(forKey: PrometheusNames.organizationLabel)
                let seriesKey = SeriesKey(organization: organization, measurement: measurement,
                                          tags: tags.sorted { $0.key < $1.key }.map { (key: $0.key, value: $0.value) })
                let id = table.nextID
                table.nextID += 1
                table.ids[idKey] = id
                table.series[id] = RemoteSeries(key: seriesKey, organization: organization, measurement: measurement, labels: labels, canonical: canonical)
                table.byMeasurement[key, default: []].append(id)
            }
        }
        lookups.withLock { states in
            var state = states[key] ?? LookupState()
            state.refreshed = now
            states[key] = state
        }
    }

    /// The characters the bucket-id parts are split by; the rest of a part is one more part.
    static let partCharacters = Array("0123456789abcdefghijklmnopqrstuvwxyz")

    /// `/api/v1/series` for `{base}`, and on a 422 again for each part of the bucket ids that
    /// begin with `prefix` (one a next character, and the rest), two levels deep at most.
    private func seriesInParts(_ base: String, prefix: String, depth: Int, start: TimeInterval, end: TimeInterval) async throws -> [[String: String]] {
        let bucket = FleetSchema.Tag.bucket
        var selector = base
        if !prefix.isEmpty { selector += ",\(bucket)=~\"\(Self.escape(Self.regexEscape(prefix))).*\"" }
        do {
            let body = try await get("/api/v1/series", ["match[]": "{\(selector)}", "start": Self.seconds(start), "end": Self.seconds(end)])
            guard let found = body["data"] as? [[String: String]] else { throw StatsSourceError.malformed("series") }
            return found
        } catch StatsSourceError.refused(let status, _) where status == 422 && depth < 2 {
            var out: [[String: String]] = []
            for character in Self.partCharacters {
                out += try await seriesInParts(base, prefix: prefix + String(character), depth: depth + 1, start: start, end: end)
            }
            // The rest: bucket ids that begin with `prefix` and a character not split on (or none).
            let rest = "\(base)\(prefix.isEmpty ? "" : ",\(bucket)=~\"\(Self.escape(Self.regexEscape(prefix))).*\""),"
                + "\(bucket)!~\"\(Self.escape(Self.regexEscape(prefix)))[0-9a-z].*\""
            let body = try await get("/api/v1/series", ["match[]": "{\(rest)}", "start": Self.seconds(start), "end": Self.seconds(end)])
            guard let found = body["data"] as? [[String: String]] else { throw StatsSourceError.malformed("series") }
            return out + found
        }
    }

    /// One `__name__` matcher per metric of a measurement's known fields; for another
    /// measurement one regular expression for every name with its prefix (derived series,
    /// which have a colon, excluded).
    static func metricNameMatchers(measurement: String) -> [String] {
        let fields: [String]
        switch measurement {
        case FleetSchema.NodeStatus.measurement: fields = [FleetSchema.NodeStatus.status, FleetSchema.NodeStatus.latency]
        case FleetSchema.BucketTraffic.measurement: fields = FleetSchema.BucketTraffic.fields
        default: return ["__name__=~\"\(escape(regexEscape(PrometheusNames.metricName(measurement: measurement, field: ""))))[a-zA-Z0-9_]+\""]
        }
        return fields.map { "__name__=\"\(escape(PrometheusNames.metricName(measurement: measurement, field: $0)))\"" }
    }
}

import CollectorModel
import Foundation
import Metrics
import RemoteWrite
import Stats
import Synchronization
import TimeSeries

/// The split-by-day read path: a group's (organization's measurement's) sealed days are read
/// from the TSDB once, in day windows, into the replica's ``SealedDayCache``; stats then read
/// them there and ask the TSDB only for the open days. Only the fleet's measurements are cached
/// (node status and bucket traffic: what the stats read), with the statistics their day
/// answers use (count, sum, ONLINE minutes).
extension PrometheusRollupSource {
    /// What a batch's group has sealed in the cache.
    struct Sealed {
        var group: String
        var coverage: SealedDayCache.Coverage
        /// The cache's field ids by name.
        var fields: [String: UInt16]

        /// The cache's ids of `names` (0 for a `nil` name, which has no rows), or `nil` when one
        /// of them is not cached.
        func fieldIDs(_ names: [String?]) -> [UInt16]? {
            var ids: [UInt16] = []
            for name in names {
                guard let name else {
                    ids.append(0)
                    continue
                }
                guard let id = fields[name] else { return nil }
                ids.append(id)
            }
            return ids
        }
    }

    /// The statistics a cached day keeps.
    static let cachedStatistics: RollupStatistics = [.count, .sum, .onlineMinutes]

    /// The fields whose days are cached, by measurement.
    static func cachedFields(measurement: String) -> [String]? {
        switch measurement {
        case FleetSchema.NodeStatus.measurement: return [FleetSchema.NodeStatus.status, FleetSchema.NodeStatus.latency]
        case FleetSchema.BucketTraffic.measurement: return FleetSchema.BucketTraffic.fields
        default: return nil
        }
    }

    /// The last day sealed at `now`: the last whose end is at least `sealAfter` ago.
    func lastSealedDay(now: Date) -> Int64 {
        Int64(((now.timeIntervalSince1970 - settings.sealAfter) / 86_400).rounded(.down)) - 1
    }

    /// The batch's group's sealed days, read into the cache first where they are not yet:
    /// `nil` without a cache, for a measurement that is not cached, or when no retained day
    /// is sealed.
    func sealedDays(_ batch: Batch, now: Date) async throws -> Sealed? {
        guard let cache, let names = Self.cachedFields(measurement: batch.sample.measurement) else { return nil }
        let firstDay = max(0, Int64((now.timeIntervalSince1970 - settings.retention) / 86_400))
        let sealable = min(lastSealedDay(now: now), try await lateDays.heldBefore(now: now, source: self))
        guard sealable >= firstDay, sealable < Int64(UInt32.max) else { return nil }
        let group = batch.sample.organization + "\u{0}" + batch.sample.measurement
        var fields: [String: UInt16] = [:]
        for name in names { fields[name] = try cache.fieldID(name) }
        await fills.enter(group)
        do {
            try await fill(group: group, batch: batch, names: names, fields: fields, firstDay: UInt32(firstDay), through: UInt32(sealable))
        } catch {
            await fills.leave(group)
            throw error
        }
        await fills.leave(group)
        guard let coverage = cache.coverage(group) else { return nil }
        if let metrics {
            let newest = sealedThrough.withLock { newest in
                newest = max(newest, Int64(coverage.through))
                return newest
            }
            Gauge(label: Self.sealedThroughMetric, factory: metrics).record(newest)
        }
        return Sealed(group: group, coverage: coverage, fields: fields)
    }

    /// Reads the group's days after its coverage through `through` into the cache, in windows
    /// of days whose answers stay near two million points (doubled after a window of few points,
    /// halved when the TSDB refuses one as too large).
    private func fill(group: String, batch: Batch, names: [String], fields: [String: UInt16], firstDay: UInt32, through: UInt32) async throws {
        guard let cache else { return }
        var coverage = cache.coverage(group)
        if let covered = coverage, covered.begin > firstDay {
            // The retention grew: its older days were never read.
            try cache.invalidate(group: group, fromDay: 0)
            coverage = nil
        }
        var from = max(coverage.map { $0.through + 1 } ?? firstDay, firstDay)
        guard from <= through else { return }
        let parts = Self.parts(measurement: batch.sample.measurement, fields: names, statistics: Self.cachedStatistics, window: "1d")
        let matchers = "{\(PrometheusNames.organizationLabel)=\"\(Self.escape(batch.sample.organization))\"}"
        let expressions = parts.map { $0.expression(matchers) }
        let known = table.withLock { $0.byMeasurement[group]?.count ?? 0 }
        var window = UInt32(clamping: max(1, 2_000_000 / max(1, known * parts.count)))
        while from <= through {
            let to = min(through, from + min(window, through - from + 1) - 1)
            let answers: [QueryAnswer.Series]
            do {
                answers = try await rangeParts(expressions, first: Int64(from) * 86_400, last: Int64(to) * 86_400, period: 86_400)
            } catch StatsSourceError.refused(let status, _) where status == 422 && window > 1 {
                window = max(1, (to - from + 1) / 2)
                continue
            }
            var perSeries: [UInt64: [UInt32: [UInt16: FieldRollup]]] = [:]
            for answer in answers {
                // A public node's series has no organization label; others must match exactly.
                guard let part = answer.part, (answer.labels[PrometheusNames.organizationLabel] ?? "") == batch.sample.organization,
                      let field = fields[names[parts[part].field]] else { continue }
                let series = try cache.seriesID(group: group, canonical: answer.canonical)
                for (start, value) in answer.points where start >= 0 {
                    parts[part].stat.apply(value, to: &perSeries[series, default: [:]][UInt32(clamping: Int64(saturating: start) / 86_400), default: [:]][field, default: Self.emptyRollup])
                }
            }
            let rollups = perSeries.mapValues { days in
                days.sorted { $0.key < $1.key }.map { day, byField in
                    (day: day, fields: byField.sorted { $0.key < $1.key }.map { (field: $0.key, rollup: $0.value) })
                }
            }
            try cache.append(group: group, begin: firstDay, through: to, rollups: rollups)
            from = to + 1
            // Days without samples (the start of a long retention) cost nothing: wider windows.
            let points = answers.reduce(0) { $0 + $1.points.count }
            if points < 500_000 { window = min(window * 2, 4_096) }
        }
    }
}

/// One holder at a time per key, waiters served in order.
actor GroupGate {
    private var busy: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func enter(_ key: String) async {
        guard busy.contains(key) else {
            busy.insert(key)
            return
        }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
    }

    /// Hands the key to the next waiter, or frees it.
    func leave(_ key: String) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()
        } else {
            busy.remove(key)
        }
    }
}

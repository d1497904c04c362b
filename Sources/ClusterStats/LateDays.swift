import CollectorModel
import Foundation
import Metrics
import RemoteWrite
import Stats
import Synchronization

/// The reader's side of late deliveries (``LateDayMark``): before a sealed-day cache is used,
/// and at most every ``checkInterval``, one instant query asks for the marks delivered since the
/// last look. A new mark of day D forgets every cached day from D on in every group, and holds
/// sealing at D − 1 for ``settle`` (the mark and its samples came in one request; the hold covers
/// the TSDB making them searchable). A replica that was stopped looks back to its last check.
actor LateDays {
    static let checkInterval: TimeInterval = 10
    static let settle: TimeInterval = 30

    private var checkedAt: TimeInterval?
    /// The newest delivery time seen per marked day.
    private var seen: [Int64: Double] = [:]
    /// Days whose sealing waits, until when.
    private var holds: [Int64: TimeInterval] = [:]

    /// The last day that may be sealed at `now` as far as late deliveries go (`Int64.max` − 1
    /// when nothing is held), after looking for new marks when the last look is old enough.
    func heldBefore(now: Date, source: PrometheusRollupSource) async throws -> Int64 {
        let time = now.timeIntervalSince1970
        if let cache = source.cache, time - (checkedAt ?? -.infinity) >= Self.checkInterval {
            let since = checkedAt ?? cache.lateCheck() ?? time
            // A margin for clocks and for marks delivered while the last look was on its way.
            // `since` may come from disk: saturated, never trapping.
            let window = max(60, Int64(saturating: (time - since).rounded(.up)).addingSaturated(120))
            let expression = "max_over_time(\(LateDayMark.metric)[\(min(window, Int64(source.settings.retention)))s])"
            let marks = try await StatsRoute.$current.withValue(PrometheusRollupSource.lateCheckRoute) {
                try await source.query(expression, time: PrometheusRollupSource.seconds(time))
            }
            for (labels, delivered) in marks {
                guard let text = labels[LateDayMark.dayLabel], let day = Int64(text), day >= 0, day < Int64(UInt32.max) else { continue }
                guard delivered > seen[day] ?? -.infinity else { continue }
                seen[day] = delivered
                try cache.invalidate(fromDay: UInt32(day))
                holds[day] = time + Self.settle
                source.sealedThrough.withLock { $0 = min($0, day - 1) }
                if let metrics = source.metrics { Counter(label: PrometheusRollupSource.invalidationsMetric, factory: metrics).increment() }
            }
            checkedAt = time
            try cache.setLateCheck(time)
            // Marks older than the window are not asked again.
            seen = seen.filter { $0.value >= time - Double(window) - 3600 }
        }
        holds = holds.filter { $0.value > time }
        return (holds.keys.min() ?? Int64.max) - 1
    }
}

extension PrometheusRollupSource {
    /// The route the late-delivery checks are counted under.
    public static let lateCheckRoute = "late-check"
}

import CollectorModel

/// How a stored series is named in Prometheus' data model when it is forwarded.
///
/// `__name__` is `<measurement>_<field>` (what VictoriaMetrics' and Telegraf's Influx bridges
/// do), with every character outside `[a-zA-Z0-9_]` turned into `_` and a `_` in front of a
/// leading digit. Labels are `organization` (absent for public nodes' series, which Prometheus
/// treats as the empty value) and the line's tags, their keys sanitized the same way; a tag key
/// that would clash with `organization` or start with the reserved `__` becomes
/// `exported_<key>`. Colons never come from a sample's names: they mark the series the collector
/// derives (``DerivedSeries``), as recording rules do.
public enum PrometheusNames {
    public static let organizationLabel = "organization"

    /// `<measurement>_<field>`, sanitized.
    public static func metricName(measurement: String, field: String) -> String {
        sanitize(measurement + "_" + field)
    }

    /// A tag key as a label name.
    public static func labelName(_ key: String) -> String {
        let name = sanitize(key)
        if name == organizationLabel || name.hasPrefix("__") { return "exported_" + name }
        return name
    }

    /// Characters outside `[a-zA-Z0-9_]` become `_`; a leading digit gets a `_` in front.
    static func sanitize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_": out.append(scalar)
            default: out.append("_")
            }
        }
        if let first = out.first, ("0"..."9").contains(first) { out.insert("_", at: out.startIndex) }
        return out.isEmpty ? "_" : String(out)
    }
}

/// The series the collector forwards besides the samples themselves, so that every statistic the
/// stats API needs is a plain `*_over_time` function of the remote TSDB (DESIGN.md §6).
///
/// For each sample of the node status field (``FleetSchema/NodeStatus``):
/// - `<metric>:online_minute` = 1 at the start of the sample's minute when the status is ONLINE:
///   identical for every ONLINE report of a minute, so a TSDB that deduplicates stores one per
///   minute and `count_over_time(…[1d])` is the day's ONLINE minutes;
/// - `<metric>:timestamp_seconds` = the sample's own time (Unix seconds, to the millisecond) at
///   that time: `max_over_time` gives the newest report time of a window, which
///   `last_over_time` of the status alone cannot.
public enum DerivedSeries {
    public static let onlineMinuteSuffix = ":online_minute"
    public static let timestampSuffix = ":timestamp_seconds"

    /// Whether samples of (`measurement`, `field`) get derived series.
    public static func applies(measurement: String, field: String) -> Bool {
        measurement == FleetSchema.NodeStatus.measurement && field == FleetSchema.NodeStatus.status
    }
}

/// The mark of a late delivery: a replica that forwards samples of a day that readers may
/// already have sealed (its end more than the seal delay ago) adds, in the same request, one
/// sample of `flashback:late_samples_day{day="<days since the epoch>"}` valued at the delivery
/// time (Unix seconds). Readers look for new marks before they use their sealed-day caches and
/// read that day and the ones after it from the TSDB again (docs/cluster.md). Only the oldest
/// day of a request is marked: a reader forgets every day from the marked one on.
public enum LateDayMark {
    public static let metric = "flashback:late_samples_day"
    public static let dayLabel = "day"
}

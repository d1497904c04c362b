import CollectorModel
import Foundation
import RemoteWrite

/// PromQL text and Prometheus API values: metric names, label matchers, literals, times.
extension PrometheusRollupSource {
    /// `{organization="…"}` plus, when it takes at most `budget` characters, `bucket=~"b1|b2"`
    /// (the query then returns only the batch's series; otherwise every series of the
    /// organization, from which the batch's are picked).
    static func matchers(organization: String, series: [RemoteSeries], budget: Int = 2_000) -> String {
        let organizationOnly = "{\(PrometheusNames.organizationLabel)=\"\(escape(organization))\"}"
        let buckets = Set(series.compactMap { $0.labels[FleetSchema.Tag.bucket] })
        guard !buckets.isEmpty, series.allSatisfy({ $0.labels[FleetSchema.Tag.bucket] != nil }) else { return organizationOnly }
        // Too long even before escaping: not built.
        guard buckets.reduce(organizationOnly.count + 16, { $0 + $1.utf8.count + 1 }) <= budget else { return organizationOnly }
        let narrowed = organizationOnly.dropLast()
            + ",\(FleetSchema.Tag.bucket)=~\"\(escape(buckets.sorted().map(regexEscape).joined(separator: "|")))\"}"
        return narrowed.count <= budget ? String(narrowed) : organizationOnly
    }

    /// A label set as one comparable string (sorted `name=value` pairs).
    static func canonical(_ labels: [String: String]) -> String {
        labels.sorted { $0.key < $1.key }.map { $0.key + "\u{1}" + $0.value }.joined(separator: "\u{2}")
    }

    /// A string inside a PromQL double-quoted literal.
    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// A literal inside a (RE2) regular expression.
    static func regexEscape(_ text: String) -> String {
        var out = ""
        for character in text {
            if "\\.+*?()|[]{}^$".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }

    /// Nanoseconds of a time the TSDB gave in seconds (to the millisecond), saturating: an answer
    /// with an absurd or non-finite number must not trap.
    static func nanoseconds(ofSeconds value: Double) -> Int64 {
        let millis = Int64(saturating: (value * 1000).rounded())
        let (nanos, overflow) = millis.multipliedReportingOverflow(by: 1_000_000)
        return overflow ? (millis > 0 ? .max : .min) : nanos
    }

    static func seconds(_ value: Double) -> String {
        String(format: "%.3f", value)
    }

    static func form(_ parameters: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return parameters.sorted { $0.key < $1.key }.map { key, value in
            (key.addingPercentEncoding(withAllowedCharacters: allowed) ?? key) + "=" + (value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)
        }.joined(separator: "&")
    }
}

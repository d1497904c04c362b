/// Metric families in the Prometheus data model and their text renderings: the Prometheus text
/// format 0.0.4 and OpenMetrics 1.0.0.
///
/// Output is byte-stable: families sorted by name, samples by label set (histogram buckets in
/// `le` order, then `_sum` and `_count`), labels by name; `# HELP` and `# TYPE` for every family.
public enum MetricType: String, Sendable {
    case counter
    case gauge
    case histogram
}

/// One sample of a family: a suffix (`_bucket`, `_sum`, `_count`, or none), labels and a value.
public struct MetricSample: Sendable, Equatable {
    public var suffix: String
    /// Label pairs; the renderer sorts them by name.
    public var labels: [Label]
    public var value: Double

    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(suffix: String = "", labels: [Label] = [], value: Double) {
        self.suffix = suffix
        self.labels = labels
        self.value = value
    }
}

/// A metric family. Counters are named with their `_total` suffix (as in the text format
/// 0.0.4); OpenMetrics output drops it from the family name and keeps it on the samples.
public struct MetricFamily: Sendable {
    public var name: String
    public var help: String
    public var type: MetricType
    public var samples: [MetricSample]

    public init(name: String, help: String, type: MetricType, samples: [MetricSample]) {
        self.name = name
        self.help = help
        self.type = type
        self.samples = samples
    }

    /// A gauge family from (labels, value) pairs.
    public static func gauge(_ name: String, _ help: String, _ samples: [([MetricSample.Label], Double)]) -> MetricFamily {
        MetricFamily(name: name, help: help, type: .gauge, samples: samples.map { MetricSample(labels: $0.0, value: $0.1) })
    }

    /// A counter family (name ending in `_total`) from (labels, value) pairs.
    public static func counter(_ name: String, _ help: String, _ samples: [([MetricSample.Label], Double)]) -> MetricFamily {
        MetricFamily(name: name, help: help, type: .counter, samples: samples.map { MetricSample(labels: $0.0, value: $0.1) })
    }
}

/// The two exposition formats.
public enum ExpositionFormat: Sendable {
    /// `text/plain; version=0.0.4`.
    case prometheus
    /// `application/openmetrics-text; version=1.0.0`, ending with `# EOF`.
    case openMetrics

    public var contentType: String {
        switch self {
        case .prometheus: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// OpenMetrics when the `Accept` header asks for it, else the text format.
    public init(accept: String?) {
        self = accept?.lowercased().contains("application/openmetrics-text") == true ? .openMetrics : .prometheus
    }
}

public enum Exposition {
    /// Renders `families` in `format`. Families with the same name are merged (their samples
    /// concatenated); a family without samples is left out.
    public static func render(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
        var merged: [String: MetricFamily] = [:]
        for family in families where !family.samples.isEmpty {
            let name = sanitize(family.name)
            if merged[name] == nil {
                var copy = family
                copy.name = name
                merged[name] = copy
            } else {
                merged[name]?.samples += family.samples
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(merged.values.reduce(0) { $0 + 64 + $1.samples.count * 96 })
        for name in merged.keys.sorted(by: { familyName($0, merged[$0]!.type, format) < familyName($1, merged[$1]!.type, format) }) {
            guard let family = merged[name] else { continue }
            write(family, format: format, to: &out)
        }
        if format == .openMetrics { out.append(contentsOf: "# EOF\n".utf8) }
        return out
    }

    /// The name in `# HELP`/`# TYPE` lines: OpenMetrics counters lose `_total`.
    static func familyName(_ name: String, _ type: MetricType, _ format: ExpositionFormat) -> String {
        if format == .openMetrics, type == .counter, name.hasSuffix("_total") { return String(name.dropLast(6)) }
        return name
    }

    static func write(_ family: MetricFamily, format: ExpositionFormat, to out: inout [UInt8]) {
        let declared = familyName(family.name, family.type, format)
        out.append(contentsOf: "# HELP \(declared) ".utf8)
        for byte in family.help.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\"") where format == .openMetrics: out.append(contentsOf: "\\\"".utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: "# TYPE \(declared) \(family.type.rawValue)\n".utf8)
        // Sample name: counters keep `_total` (added when missing), others name + suffix.
        let base = family.type == .counter && !family.name.hasSuffix("_total") ? family.name + "_total" : family.name
        var rendered: [(key: [UInt8], order: Int, position: Int, line: [UInt8])] = []
        rendered.reserveCapacity(family.samples.count)
        for (position, sample) in family.samples.enumerated() {
            let labels = sample.labels.map { MetricSample.Label(sanitize($0.name, label: true), $0.value) }.sorted { $0.name < $1.name }
            var key: [UInt8] = []
            var line: [UInt8] = []
            line.append(contentsOf: (family.type == .counter ? base : family.name + sample.suffix).utf8)
            if !labels.isEmpty {
                line.append(UInt8(ascii: "{"))
                for (index, label) in labels.enumerated() {
                    if index > 0 { line.append(UInt8(ascii: ",")) }
                    line.append(contentsOf: label.name.utf8)
                    line.append(contentsOf: "=\"".utf8)
                    appendEscaped(label.value, to: &line)
                    line.append(UInt8(ascii: "\""))
                    if label.name != "le" {
                        key.append(contentsOf: label.name.utf8)
                        key.append(0)
                        key.append(contentsOf: label.value.utf8)
                        key.append(0)
                    }
                }
                line.append(UInt8(ascii: "}"))
            }
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: formatValue(sample.value).utf8)
            line.append(UInt8(ascii: "\n"))
            // Within one label set: buckets by `le`, then _sum, then _count.
            let order: Int
            switch sample.suffix {
            case "_bucket": order = 0
            case "_sum": order = 1
            case "_count": order = 2
            default: order = 0
            }
            rendered.append((key, order, position, line))
        }
        rendered.sort { lhs, rhs in
            if lhs.key != rhs.key { return lhs.key.lexicographicallyPrecedes(rhs.key) }
            return (lhs.order, lhs.position) < (rhs.order, rhs.position)
        }
        for entry in rendered { out.append(contentsOf: entry.line) }
    }

    static func appendEscaped(_ value: String, to out: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\n"): out.append(contentsOf: "\\n".utf8)
            default: out.append(byte)
            }
        }
    }

    /// `42`, `0.25`, `+Inf`, `-Inf`, `NaN`.
    public static func formatValue(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value.rounded() == value, abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// A valid metric (or label) name: invalid characters become `_`, a leading digit gets `_`.
    public static func sanitize(_ name: String, label: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(name.utf8.count)
        for (index, scalar) in name.unicodeScalars.enumerated() {
            let valid = (scalar >= "a" && scalar <= "z") || (scalar >= "A" && scalar <= "Z") || scalar == "_" || (!label && scalar == ":")
                || (index > 0 && scalar >= "0" && scalar <= "9")
            if index == 0, scalar >= "0", scalar <= "9" { out.append("_") }
            out.unicodeScalars.append(valid || (scalar >= "0" && scalar <= "9") ? scalar : "_")
        }
        return out.isEmpty ? "_" : out
    }
}

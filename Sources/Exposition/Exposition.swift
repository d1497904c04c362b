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

    /// A label name and its value.
    public struct Label: Sendable, Equatable {
        public var name: String
        public var value: String

        /// A `Label` from its parts.
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A `MetricSample` from its parts.
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
    /// Sample lines already rendered (in order, escaped, each ending in a newline), for large
    /// families built in one pass; used instead of `samples` when set.
    public var rendered: [UInt8]?

    /// A `MetricFamily` from its parts.
    public init(name: String, help: String, type: MetricType, samples: [MetricSample]) {
        self.name = name
        self.help = help
        self.type = type
        self.samples = samples
    }

    /// A family whose sample lines are already rendered (see ``LineWriter``).
    public init(name: String, help: String, type: MetricType, rendered: [UInt8]) {
        self.init(name: name, help: help, type: type, samples: [])
        self.rendered = rendered
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

/// Renders metric families as the Prometheus text format 0.0.4 or OpenMetrics 1.0.0: families sorted by name, samples by label set, byte-stable for the same input.
public enum Exposition {
    /// Renders `families` in `format`. Families with the same name are merged (their samples
    /// concatenated); a family without samples is left out.
    public static func render(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
        var merged: [String: MetricFamily] = [:]
        for family in families where !family.samples.isEmpty || !(family.rendered?.isEmpty ?? true) {
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
        out.reserveCapacity(merged.values.reduce(0) { $0 + 64 + $1.help.utf8.count * 2 + $1.samples.count * 96 + ($1.rendered?.count ?? 0) })
        for family in merged.values.sorted(by: { familyName($0.name, $0.type, format) < familyName($1.name, $1.type, format) }) {
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
        if let rendered = family.rendered {
            out.append(contentsOf: rendered)
            return
        }
        // Sample name: counters keep `_total` (added when missing), others name + suffix.
        let base = Array((family.type == .counter && !family.name.hasSuffix("_total") ? family.name + "_total" : family.name).utf8)
        var samples = family.samples
        for index in samples.indices where !isSortedByName(samples[index].labels) {
            samples[index].labels = samples[index].labels.map { MetricSample.Label(sanitize($0.name, label: true), $0.value) }.sorted { $0.name < $1.name }
        }
        // Samples are usually given in order already (one linear check); otherwise sorted by
        // label set, then (within one label set of a histogram) buckets, _sum, _count.
        var order = Array(samples.indices)
        let inOrder = zip(samples.indices, samples.indices.dropFirst()).allSatisfy { !precedes(samples[$1], $1, samples[$0], $0) }
        if !inOrder {
            order.sort { precedes(samples[$0], $0, samples[$1], $1) }
        }
        for index in order {
            let sample = samples[index]
            if family.type == .counter {
                out.append(contentsOf: base)
            } else {
                out.append(contentsOf: base)
                out.append(contentsOf: sample.suffix.utf8)
            }
            if !sample.labels.isEmpty {
                out.append(UInt8(ascii: "{"))
                for (position, label) in sample.labels.enumerated() {
                    if position > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(contentsOf: label.name.utf8)
                    out.append(UInt8(ascii: "="))
                    out.append(UInt8(ascii: "\""))
                    appendEscaped(label.value, to: &out)
                    out.append(UInt8(ascii: "\""))
                }
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: " "))
            appendValue(sample.value, to: &out)
            out.append(UInt8(ascii: "\n"))
        }
    }

    static func isSortedByName(_ labels: [MetricSample.Label]) -> Bool {
        zip(labels, labels.dropFirst()).allSatisfy { $0.name < $1.name } && labels.allSatisfy { isValidLabelName($0.name) }
    }

    static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")) else { return false }
        return name.utf8.allSatisfy { ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
            || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") }
    }

    /// Sample order: label sets (sorted by name; `le` left out) compared pair by pair, then
    /// buckets before `_sum` before `_count`, then the given order.
    static func precedes(_ lhs: MetricSample, _ lhsPosition: Int, _ rhs: MetricSample, _ rhsPosition: Int) -> Bool {
        var left = lhs.labels.makeIterator()
        var right = rhs.labels.makeIterator()
        while true {
            var l = left.next()
            while l?.name == "le" { l = left.next() }
            var r = right.next()
            while r?.name == "le" { r = right.next() }
            switch (l, r) {
            case (nil, nil):
                let (lo, ro) = (suffixOrder(lhs.suffix), suffixOrder(rhs.suffix))
                return lo != ro ? lo < ro : lhsPosition < rhsPosition
            case (nil, _): return true
            case (_, nil): return false
            case let (l?, r?):
                if l.name != r.name { return l.name < r.name }
                if l.value != r.value { return l.value < r.value }
            }
        }
    }

    static func suffixOrder(_ suffix: String) -> Int {
        switch suffix {
        case "_sum": return 1
        case "_count": return 2
        default: return 0
        }
    }

    /// `42`, `0.25`, `+Inf`, `-Inf`, `NaN`, without a string for integers.
    public static func appendValue(_ value: Double, to out: inout [UInt8]) {
        if value.isFinite, value.rounded() == value, abs(value) < 1e15 {
            appendInteger(Int64(value), to: &out)
            return
        }
        // Up to six decimals when they are exact (latencies, millisecond timestamps): written
        // directly. The decimal parses back to `value`: both `scaled` and 10^6 are exact
        // doubles, so the division below is the correctly rounded value of that decimal.
        if value.isFinite, abs(value) < 1e9 {
            let scaled = (value * 1e6).rounded()
            if scaled / 1e6 == value {
                let micros = Int64(scaled)
                if micros < 0 { out.append(UInt8(ascii: "-")) }
                appendInteger(Int64(micros.magnitude / 1_000_000), to: &out)
                var fraction = micros.magnitude % 1_000_000
                out.append(UInt8(ascii: "."))
                var divisor: UInt64 = 100_000
                while fraction > 0 {
                    out.append(UInt8(ascii: "0") + UInt8(fraction / divisor))
                    fraction %= divisor
                    divisor /= 10
                }
                return
            }
        }
        out.append(contentsOf: formatValue(value).utf8)
    }

    /// The decimal digits of `value`, without making a string.
    public static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        guard magnitude >= 10 else {
            out.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude))
            return
        }
        // Digits from the last, divided by the constant 10 (a multiplication), into a stack
        // buffer: one append instead of one a digit.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buffer in
            var position = buffer.count
            repeat {
                position -= 1
                buffer[position] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[position...]))
        }
    }

    /// Appends `value` as a label value, escaping backslash, double quote and newline.
    public static func appendEscaped(_ value: String, to out: inout [UInt8]) {
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

/// Renders the sample lines of one large family in one pass: the caller gives samples in label
/// order with label names sorted, and may reuse one rendered label set for several families.
public struct LineWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private let name: [UInt8]

    /// A `LineWriter` from its parts.
    public init(name: String, capacity: Int = 0) {
        self.name = Array(name.utf8)
        bytes.reserveCapacity(capacity)
    }

    /// `{a="x",b="y"}` for labels whose names are valid and sorted.
    public static func labelSet(_ labels: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        for (index, (name, value)) in labels.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "\""))
            Exposition.appendEscaped(value, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Appends one sample with a pre-rendered label set (`{a="1",b="2"}` or empty).
    public mutating func append(labelSet: [UInt8], value: Double) {
        bytes.append(contentsOf: name)
        bytes.append(contentsOf: labelSet)
        bytes.append(UInt8(ascii: " "))
        Exposition.appendValue(value, to: &bytes)
        bytes.append(UInt8(ascii: "\n"))
    }
}

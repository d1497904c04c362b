import CoreMetrics
import Synchronization

/// A swift-metrics backend that keeps every metric in memory for `/metrics`: counters,
/// floating-point counters, gauges (recorders without aggregation, meters) and histograms
/// (timers in seconds, aggregating recorders).
///
/// Handlers are created once per (label, dimensions) and shared, as swift-metrics expects;
/// updates are lock-free atomics (counters, gauges) or one short lock (histograms).
public final class MetricsRegistry: MetricsFactory, Sendable {
    struct Key: Hashable {
        var name: String
        var labels: [String]
    }

    enum Entry {
        case counter(CounterBox)
        case floatingCounter(FloatingCounterBox)
        case gauge(GaugeBox)
        case histogram(HistogramBox)
    }

    private let entries = Mutex<[Key: (labels: [MetricSample.Label], entry: Entry)]>([:])
    private let helps = Mutex<[String: String]>([:])
    /// Bucket upper bounds of timers, in seconds.
    public let timerBuckets: [Double]

    /// A `MetricsRegistry` from its parts.
    public init(timerBuckets: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]) {
        self.timerBuckets = timerBuckets
    }

    /// Sets the `# HELP` text of metric `name`.
    public func describe(_ name: String, _ help: String) {
        helps.withLock { $0[name] = help }
    }

    private func entry(_ label: String, _ dimensions: [(String, String)], make: () -> Entry) -> Entry {
        let name = Exposition.sanitize(label)
        let labels = dimensions.map { MetricSample.Label($0.0, $0.1) }.sorted { $0.name < $1.name }
        let key = Key(name: name, labels: labels.flatMap { [$0.name, $0.value] })
        return entries.withLock { entries in
            if let known = entries[key] { return known.entry }
            let made = make()
            entries[key] = (labels, made)
            return made
        }
    }

    /// `MetricsFactory` requirement.
    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        if case .counter(let box) = entry(label, dimensions, make: { .counter(CounterBox()) }) { return box }
        return CounterBox()
    }

    /// `MetricsFactory` requirement.
    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        if case .floatingCounter(let box) = entry(label, dimensions, make: { .floatingCounter(FloatingCounterBox()) }) { return box }
        return FloatingCounterBox()
    }

    /// `MetricsFactory` requirement.
    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        if aggregate {
            if case .histogram(let box) = entry(label, dimensions, make: { .histogram(HistogramBox(buckets: timerBuckets, scale: 1)) }) { return box }
            return HistogramBox(buckets: timerBuckets, scale: 1)
        }
        if case .gauge(let box) = entry(label, dimensions, make: { .gauge(GaugeBox()) }) { return box }
        return GaugeBox()
    }

    /// `MetricsFactory` requirement.
    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        if case .gauge(let box) = entry(label, dimensions, make: { .gauge(GaugeBox()) }) { return box }
        return GaugeBox()
    }

    /// `MetricsFactory` requirement.
    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        if case .histogram(let box) = entry(label, dimensions, make: { .histogram(HistogramBox(buckets: timerBuckets, scale: 1e-9)) }) { return box }
        return HistogramBox(buckets: timerBuckets, scale: 1e-9)
    }

    /// `MetricsFactory` requirement.
    public func destroyCounter(_ handler: any CounterHandler) { remove(handler) }
    /// `MetricsFactory` requirement.
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { remove(handler) }
    /// `MetricsFactory` requirement.
    public func destroyRecorder(_ handler: any RecorderHandler) { remove(handler) }
    /// `MetricsFactory` requirement.
    public func destroyMeter(_ handler: any MeterHandler) { remove(handler) }
    /// `MetricsFactory` requirement.
    public func destroyTimer(_ handler: any TimerHandler) { remove(handler) }

    private func remove(_ handler: AnyObject) {
        entries.withLock { entries in
            let identity = ObjectIdentifier(handler)
            entries = entries.filter { _, value in
                switch value.entry {
                case .counter(let box): return ObjectIdentifier(box) != identity
                case .floatingCounter(let box): return ObjectIdentifier(box) != identity
                case .gauge(let box): return ObjectIdentifier(box) != identity
                case .histogram(let box): return ObjectIdentifier(box) != identity
                }
            }
        }
    }

    /// Every metric as families (one per name), with their help texts.
    public func families() -> [MetricFamily] {
        let snapshot = entries.withLock { Array($0) }
        let helps = self.helps.withLock { $0 }
        var families: [String: MetricFamily] = [:]
        for (key, value) in snapshot {
            let type: MetricType
            var samples: [MetricSample] = []
            switch value.entry {
            case .counter(let box):
                type = .counter
                samples.append(MetricSample(labels: value.labels, value: Double(box.value.load(ordering: .relaxed))))
            case .floatingCounter(let box):
                type = .counter
                samples.append(MetricSample(labels: value.labels, value: box.value))
            case .gauge(let box):
                type = .gauge
                samples.append(MetricSample(labels: value.labels, value: box.value))
            case .histogram(let box):
                type = .histogram
                let state = box.snapshot
                var cumulative: UInt64 = 0
                for (bound, count) in zip(box.buckets, state.counts) {
                    cumulative += count
                    samples.append(MetricSample(suffix: "_bucket", labels: value.labels + [MetricSample.Label("le", Exposition.formatValue(bound))], value: Double(cumulative)))
                }
                samples.append(MetricSample(suffix: "_bucket", labels: value.labels + [MetricSample.Label("le", "+Inf")], value: Double(state.count)))
                samples.append(MetricSample(suffix: "_sum", labels: value.labels, value: state.sum))
                samples.append(MetricSample(suffix: "_count", labels: value.labels, value: Double(state.count)))
            }
            let help = helps[key.name] ?? "Flashback collector metric \(key.name)."
            families[key.name, default: MetricFamily(name: key.name, help: help, type: type, samples: [])].samples += samples
        }
        return Array(families.values)
    }
}

final class CounterBox: CounterHandler, Sendable {
    let value = Atomic<Int64>(0)

    func increment(by amount: Int64) {
        value.add(amount, ordering: .relaxed)
    }

    func reset() {
        value.store(0, ordering: .relaxed)
    }
}

final class FloatingCounterBox: FloatingPointCounterHandler, Sendable {
    private let state = Mutex<Double>(0)

    var value: Double { state.withLock { $0 } }

    func increment(by amount: Double) {
        guard amount.isFinite, amount > 0 else { return }
        state.withLock { $0 += amount }
    }

    func reset() {
        state.withLock { $0 = 0 }
    }
}

final class GaugeBox: RecorderHandler, MeterHandler, Sendable {
    private let bits = Atomic<UInt64>(Double(0).bitPattern)

    var value: Double { Double(bitPattern: bits.load(ordering: .relaxed)) }

    func record(_ value: Int64) { set(Double(value)) }
    func record(_ value: Double) { set(value) }
    func set(_ value: Int64) { set(Double(value)) }

    func set(_ value: Double) {
        bits.store(value.bitPattern, ordering: .relaxed)
    }

    func increment(by amount: Double) { add(amount) }
    func decrement(by amount: Double) { add(-amount) }

    private func add(_ amount: Double) {
        var current = bits.load(ordering: .relaxed)
        while true {
            let next = (Double(bitPattern: current) + amount).bitPattern
            let (exchanged, original) = bits.compareExchange(expected: current, desired: next, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }
}

final class HistogramBox: TimerHandler, RecorderHandler, Sendable {
    struct State {
        var counts: [UInt64]
        var count: UInt64 = 0
        var sum: Double = 0
    }

    let buckets: [Double]
    /// Factor from recorded units to the exported unit (1e-9 for timers: seconds).
    let scale: Double
    private let state: Mutex<State>

    init(buckets: [Double], scale: Double) {
        self.buckets = buckets
        self.scale = scale
        state = Mutex(State(counts: [UInt64](repeating: 0, count: buckets.count)))
    }

    var snapshot: State { state.withLock { $0 } }

    func recordNanoseconds(_ duration: Int64) { observe(Double(duration) * scale) }
    func record(_ value: Int64) { observe(Double(value) * scale) }
    func record(_ value: Double) { observe(value * scale) }

    private func observe(_ value: Double) {
        guard value.isFinite else { return }
        let index = buckets.firstIndex { value <= $0 }
        state.withLock { state in
            if let index { state.counts[index] += 1 }
            state.count += 1
            state.sum += value
        }
    }
}

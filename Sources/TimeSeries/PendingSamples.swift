/// Samples accepted but not yet flushed into sample blocks, in arrival order and in columns,
/// together with the log entries that hold them.
///
/// The write path only appends (one bulk append per write: no hash, no per-series array, no
/// cache miss per line); grouping by series and hour is done once, by the flush
/// (``groupedBySeriesInTimeOrder()``), and for readers by an index over the points added since
/// the last read (``forEachSample(series:_:)``), so a write-only burst never builds it.
/// Arrival order is kept within a series, so that for a repeated (field, time) the later value
/// wins when the block is built.
struct PendingSamples {
    /// Per point: its series, time and the end of its fields in `fields` and `values`.
    private(set) var series: [UInt64] = []
    private(set) var times: [Int64] = []
    private(set) var ends: [Int] = []
    /// Per sample: field id and value.
    private(set) var fields: [UInt16] = []
    private(set) var values: [Double] = []
    private(set) var logSequences: [UInt64] = []
    /// When the oldest pending sample arrived.
    private(set) var since: ContinuousClock.Instant?
    /// The points of each series (offsets, in arrival order) among the first `indexed` points.
    private var index: [UInt64: [Int]] = [:]
    private var indexed = 0

    var sampleCount: Int { fields.count }
    var pointCount: Int { series.count }
    var isEmpty: Bool { sampleCount == 0 && logSequences.isEmpty }

    /// The fields of point `point`: a range of `fields` and `values`.
    func fieldRange(of point: Int) -> Range<Int> {
        (point == 0 ? 0 : ends[point - 1])..<ends[point]
    }

    /// Empty, with room for `samples` samples (and half as many points) before any growth.
    init(reservingSamples samples: Int = 0) {
        guard samples > 0 else { return }
        fields.reserveCapacity(samples)
        values.reserveCapacity(samples)
        series.reserveCapacity(samples / 2)
        times.reserveCapacity(samples / 2)
        ends.reserveCapacity(samples / 2)
    }

    /// Empties the buffer, keeping its capacity (a flushed buffer becomes the next one to fill,
    /// so steady ingest allocates no new columns).
    mutating func removeAll() {
        series.removeAll(keepingCapacity: true)
        times.removeAll(keepingCapacity: true)
        ends.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        logSequences.removeAll(keepingCapacity: true)
        since = nil
        index = [:]
        indexed = 0
    }

    /// Appends one point (no-op without fields).
    mutating func add(series id: UInt64, timestamp: Int64, fields pointFields: [(UInt16, Double)]) {
        guard !pointFields.isEmpty else { return }
        for (field, value) in pointFields {
            fields.append(field)
            values.append(value)
        }
        series.append(id)
        times.append(timestamp)
        ends.append(fields.count)
        if since == nil { since = .now }
    }

    mutating func recordLog(_ sequence: UInt64) {
        logSequences.append(sequence)
    }

    /// Appends `later` (which arrived after everything here).
    mutating func append(_ later: PendingSamples) {
        guard !later.isEmpty else { return }
        let offset = fields.count
        series += later.series
        times += later.times
        ends.reserveCapacity(ends.count + later.ends.count)
        for end in later.ends { ends.append(offset + end) }
        fields += later.fields
        values += later.values
        logSequences += later.logSequences
        if since == nil { since = later.since }
    }

    /// Each point's offset, ordered by series, then time, then arrival: the flush walks runs of
    /// one series and hour, whose fields then need no sorting (concurrent writers interleave
    /// their times), and of a repeated time the last arrival still comes last. Writes usually
    /// arrive as ascending runs of series (a node sends its series in the same order each
    /// time), which the sort merges cheaply.
    func groupedBySeriesInTimeOrder() -> [Int] {
        var keys: [(series: UInt64, time: Int64, point: Int)] = []
        keys.reserveCapacity(series.count)
        for point in series.indices { keys.append((series[point], times[point], point)) }
        // The point offset makes the order total, so the sort's stability does not matter.
        keys.sort { ($0.series, $0.time, $0.point) < ($1.series, $1.time, $1.point) }
        return keys.map(\.point)
    }

    /// Appends the samples of point `point` to `samples`.
    func appendSamples(of point: Int, to samples: inout [FieldSample]) {
        let time = times[point]
        for offset in fieldRange(of: point) {
            samples.append(FieldSample(field: fields[offset], timestamp: time, value: values[offset]))
        }
    }

    /// Indexes the points added since the last read.
    private mutating func updateIndex() {
        guard indexed < series.count else { return }
        for point in indexed..<series.count {
            index[series[point], default: []].append(point)
        }
        indexed = series.count
    }

    /// Calls `body` with each pending sample of series `id`, in arrival order.
    mutating func forEachSample(series id: UInt64, _ body: (FieldSample) -> Void) {
        updateIndex()
        for point in index[id] ?? [] {
            let time = times[point]
            for offset in fieldRange(of: point) {
                body(FieldSample(field: fields[offset], timestamp: time, value: values[offset]))
            }
        }
    }

    /// Whether series `id` has a pending sample.
    mutating func contains(series id: UInt64) -> Bool {
        updateIndex()
        return index[id] != nil
    }

    /// The pending samples of `series` in hours `[fromHour, toHour)`, by hour.
    mutating func samples(series id: UInt64, fromHour: UInt32, toHour: UInt32) -> [UInt32: [FieldSample]] {
        var out: [UInt32: [FieldSample]] = [:]
        forEachSample(series: id) { sample in
            let hour = RollupKey.hour(ofNanoseconds: sample.timestamp)
            if hour >= fromHour && hour < toHour { out[hour, default: []].append(sample) }
        }
        return out
    }
}

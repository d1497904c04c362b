import Ingest

/// Points to store, in columns: the ingest path's form, with no allocation per point. A point
/// names its series either by id (known from a ``SeriesSection`` memo) or by an entry of
/// `newSeries` to look up; its fields are `fields[fieldStart..<fieldEnd]`.
public struct SeriesBatch: Sendable {
    public struct Point: Sendable {
        /// The series id, when `newSeries` is -1.
        public var seriesID: UInt64
        /// Index into `newSeries`, or -1.
        public var newSeries: Int32
        /// Index into `organizations`: whose field budget the point's field names count against
        /// (it sits in the padding after `newSeries`, so a point stays 32 bytes).
        public var organization: Int32
        /// Nanoseconds since the Unix epoch.
        public var timestamp: Int64
        public var fieldStart: Int32
        public var fieldEnd: Int32

        var fieldCount: Int { Int(fieldEnd - fieldStart) }
    }

    /// A series to resolve (and create when new), and where to remember its id.
    public struct NewSeries: Sendable {
        public var key: SeriesKey
        public var memo: (section: SeriesSection, context: SeriesContext)?

        public init(key: SeriesKey, memo: (section: SeriesSection, context: SeriesContext)? = nil) {
            self.key = key
            self.memo = memo
        }
    }

    public struct Field: Sendable {
        /// Index into `fieldNames`.
        public var name: Int32
        public var value: Double

        public init(name: Int32, value: Double) {
            self.name = name
            self.value = value
        }
    }

    public var points: [Point] = []
    public var newSeries: [NewSeries] = []
    public var fields: [Field] = []
    public var fieldNames: [String] = []
    /// The organizations writing the points (usually one; UDP bursts may hold several).
    public var organizations: [String] = []

    public init() {}

    /// `points` as a batch.
    public init(_ points: [SeriesPoint]) {
        var names: [String: Int32] = [:]
        var writers: [String: Int32] = [:]
        self.points.reserveCapacity(points.count)
        for point in points {
            let start = Int32(fields.count)
            for field in point.fields {
                fields.append(Field(name: Self.intern(field.name, in: &fieldNames, names: &names), value: field.value))
            }
            let organization = Self.intern(point.organization, in: &organizations, names: &writers)
            add(newSeries: NewSeries(key: SeriesKey(organization: point.organization, measurement: point.measurement, tags: point.tags)),
                timestamp: point.timestamp, fieldStart: start, organization: organization)
        }
    }

    /// Adds a point of a known series whose fields were appended from `fieldStart` on.
    /// - Parameter organization: index into `organizations`.
    @inline(__always)
    public mutating func add(seriesID: UInt64, timestamp: Int64, fieldStart: Int32, organization: Int32 = 0) {
        points.append(Point(seriesID: seriesID, newSeries: -1, organization: organization, timestamp: timestamp, fieldStart: fieldStart,
                            fieldEnd: Int32(fields.count)))
    }

    /// Adds a point of a series to look up whose fields were appended from `fieldStart` on.
    /// - Parameter organization: index into `organizations`.
    public mutating func add(newSeries series: NewSeries, timestamp: Int64, fieldStart: Int32, organization: Int32 = 0) {
        points.append(Point(seriesID: 0, newSeries: Int32(newSeries.count), organization: organization, timestamp: timestamp,
                            fieldStart: fieldStart, fieldEnd: Int32(fields.count)))
        newSeries.append(series)
    }

    /// The organization of `point` (`""` when the batch names none).
    public func organization(of point: Point) -> String {
        organizations.indices.contains(Int(point.organization)) ? organizations[Int(point.organization)] : ""
    }

    /// Appends the points of `other` (field names are merged).
    public mutating func append(_ other: SeriesBatch) {
        guard !other.points.isEmpty else { return }
        var names = Dictionary(fieldNames.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { first, _ in first })
        let mapping = other.fieldNames.map { Self.intern($0, in: &fieldNames, names: &names) }
        var writers = Dictionary(organizations.enumerated().map { ($0.element, Int32($0.offset)) }, uniquingKeysWith: { first, _ in first })
        let writerMapping = other.organizations.map { Self.intern($0, in: &organizations, names: &writers) }
        let fieldOffset = Int32(fields.count)
        let seriesOffset = Int32(newSeries.count)
        fields += other.fields.map { Field(name: mapping[Int($0.name)], value: $0.value) }
        newSeries += other.newSeries
        points += other.points.map { point in
            var moved = point
            moved.fieldStart += fieldOffset
            moved.fieldEnd += fieldOffset
            if moved.newSeries >= 0 { moved.newSeries += seriesOffset }
            if writerMapping.indices.contains(Int(point.organization)) { moved.organization = writerMapping[Int(point.organization)] }
            return moved
        }
    }

    private static func intern(_ name: String, in list: inout [String], names: inout [String: Int32]) -> Int32 {
        if let known = names[name] { return known }
        let index = Int32(list.count)
        list.append(name)
        names[name] = index
        return index
    }
}

extension SeriesBatch {
    /// The batch of parsed lines written by `node` (a node id) or, when `nil`, by the
    /// organization itself, and the lines refused on the way.
    ///
    /// Rules: a node's lines carry its `node` tag (added when absent; a line naming another node
    /// is refused), string fields are not stored, and a line without a timestamp gets
    /// `nowNanos`. A line whose series section remembers its series for this writer skips the
    /// series key.
    public static func lines(
        _ parsed: LineProtocolParser.Result, organization: String, node: String?, nowNanos: Int64
    ) -> (batch: SeriesBatch, errors: [LineError]) {
        var batch = SeriesBatch()
        batch.points.reserveCapacity(parsed.rows.count)
        batch.fields.reserveCapacity(parsed.fields.count)
        batch.fieldNames = parsed.fieldKeys
        batch.organizations = [organization]
        var errors: [LineError] = []
        // The same series section maps to the same series only for the same organization and
        // node (a node's lines get its node tag).
        let context = SeriesContext.of(organization: organization, node: node)
        for (offset, row) in parsed.rows.enumerated() {
            let section = parsed.sections[offset]
            if let node, let claimed = section.nodeTag, claimed != node {
                errors.append(LineError(line: row.line, reason: .invalidTag, detail: "node tag \(claimed) is not the writing node"))
                continue
            }
            let start = Int32(batch.fields.count)
            for field in parsed.fields[row.fieldRange] {
                if let value = field.value.numericValue { batch.fields.append(Field(name: field.key, value: value)) }
            }
            guard batch.fields.count > Int(start) else {
                errors.append(LineError(line: row.line, reason: .invalidFieldValue, detail: "no numeric field (string fields are not stored)"))
                continue
            }
            let timestamp = row.timestamp ?? nowNanos
            if let context, let id = section.seriesID(in: context) {
                batch.add(seriesID: id, timestamp: timestamp, fieldStart: start)
                continue
            }
            var tags = section.tags.map { (key: $0.key, value: $0.value) }
            if let node, section.nodeTag == nil {
                tags.append((key: "node", value: node))
                tags.sort { $0.key < $1.key }
            }
            let key = SeriesKey(organization: organization, measurement: section.measurement, tags: tags)
            batch.add(newSeries: NewSeries(key: key, memo: context.map { (section, $0) }), timestamp: timestamp, fieldStart: start)
        }
        return (batch, errors)
    }
}

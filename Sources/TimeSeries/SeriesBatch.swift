/// Points to store, in columns: the ingest path's form, with no allocation per point. A point
/// names its series either by id (known to the writer from an earlier write) or by an entry of
/// `newSeries` to look up; its fields are `fields[fieldStart..<fieldEnd]`.
public struct SeriesBatch: Sendable {
    /// One point: its series, time and field range.
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

        @usableFromInline
        init(seriesID: UInt64, newSeries: Int32, organization: Int32, timestamp: Int64, fieldStart: Int32, fieldEnd: Int32) {
            self.seriesID = seriesID
            self.newSeries = newSeries
            self.organization = organization
            self.timestamp = timestamp
            self.fieldStart = fieldStart
            self.fieldEnd = fieldEnd
        }

        var fieldCount: Int { Int(fieldEnd - fieldStart) }
    }

    /// A series to resolve (and create when new); the writer learns its id through
    /// ``TimeSeriesStore/write(_:now:sync:seriesResolved:)``.
    public struct NewSeries: Sendable {
        public var key: SeriesKey

        /// A `NewSeries` from its parts.
        public init(key: SeriesKey) {
            self.key = key
        }
    }

    /// One field sample of a point.
    public struct Field: Sendable {
        /// Index into `fieldNames`.
        public var name: Int32
        public var value: Double

        /// A `Field` from its parts.
        @inlinable
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

    /// The defaults, as documented on each property.
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
    // Inlinable: the ingestion layer calls these once per line from another module.
    @inlinable
    public mutating func add(seriesID: UInt64, timestamp: Int64, fieldStart: Int32, organization: Int32 = 0) {
        points.append(Point(seriesID: seriesID, newSeries: -1, organization: organization, timestamp: timestamp, fieldStart: fieldStart,
                            fieldEnd: Int32(fields.count)))
    }

    /// Adds a point of a series to look up whose fields were appended from `fieldStart` on.
    /// - Parameter organization: index into `organizations`.
    @inlinable
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

import Foundation
import RocksDB
import Synchronization

/// The identity of a series: organization, measurement and tags sorted by key.
///
/// Canonical bytes: every component as `length u16 BE ‖ UTF-8 bytes`, in the order
/// organization, measurement, then key and value of each tag. Two series are the same exactly
/// when their canonical bytes are equal.
public struct SeriesKey: Hashable, Sendable {
    public let bytes: [UInt8]

    /// - Parameter tags: sorted by key, keys unique (as ``Ingest/LinePoint`` delivers them).
    public init(organization: String, measurement: String, tags: [(key: String, value: String)]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(organization.utf8.count + measurement.utf8.count + tags.count * 24 + 4)
        func append(_ text: String) {
            var text = text
            text.withUTF8 { utf8 in
                let count = UInt16(clamping: utf8.count)
                bytes.append(UInt8(count >> 8))
                bytes.append(UInt8(count & 0xFF))
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8.prefix(Int(count))))
            }
        }
        append(organization)
        append(measurement)
        for tag in tags {
            append(tag.key)
            append(tag.value)
        }
        self.bytes = bytes
    }

    public init?(bytes: [UInt8]) {
        guard SeriesKey.decodeComponents(bytes) != nil else { return nil }
        self.bytes = bytes
    }

    public static func == (lhs: SeriesKey, rhs: SeriesKey) -> Bool { lhs.bytes == rhs.bytes }

    /// Hashes the bytes in one call (the synthesized version feeds the hasher byte by byte).
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    static func decodeComponents(_ bytes: [UInt8]) -> [String]? {
        var components: [String] = []
        var offset = 0
        while offset < bytes.count {
            guard offset + 2 <= bytes.count else { return nil }
            let length = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
            offset += 2
            guard offset + length <= bytes.count, let text = String(validating: bytes[offset..<(offset + length)], as: UTF8.self) else { return nil }
            components.append(text)
            offset += length
        }
        guard components.count >= 2, components.count % 2 == 0 else { return nil }
        return components
    }

    public var organization: String { SeriesKey.decodeComponents(bytes)?[0] ?? "" }
    public var measurement: String { SeriesKey.decodeComponents(bytes)?[1] ?? "" }

    /// The tags, sorted by key.
    public var tags: [(key: String, value: String)] {
        guard let components = SeriesKey.decodeComponents(bytes) else { return [] }
        return stride(from: 2, to: components.count, by: 2).map { (components[$0], components[$0 + 1]) }
    }
}

/// Why a sample could not get a series id.
public enum SeriesLimitError: Error, Equatable, Sendable {
    /// The organization already has `limit` series; only new series are refused.
    case seriesLimit(organization: String, limit: Int)
    /// The field dictionary is full (65,535 distinct field names).
    case fieldLimit
}

/// Series ids and field ids, persisted in the `series` column family and cached in memory.
///
/// Keys: `k/<series key bytes>` → id u64 BE; `i/<id u64 BE>` → series key bytes;
/// `f/<field name>` → field id u16 BE. New ids are written (WAL on) before any sample that uses
/// them, so a crash leaves at worst an unused id. Thread-safety: `Sendable`; lookups of known
/// series take the lock briefly; new series are assigned under it.
public final class SeriesIndex: Sendable {
    private struct State {
        var ids: [SeriesKey: UInt64] = [:]
        var keys: [UInt64: SeriesKey] = [:]
        var nextID: UInt64 = 1
        var perOrganization: [String: Int] = [:]
        /// Series ids by organization and measurement (`org\0measurement`), ascending.
        var byMeasurement: [String: [UInt64]] = [:]
        var fields: [String: UInt16] = [:]
        var fieldNames: [UInt16: String] = [:]
    }

    private let state: Mutex<State>
    private let database: Database
    private let family: ColumnFamily
    /// Most series per organization; a new series beyond it is refused (`--max-series-per-org`).
    public let maxSeriesPerOrganization: Int

    static let keyPrefix = Array("k/".utf8)
    static let idPrefix = Array("i/".utf8)
    static let fieldPrefix = Array("f/".utf8)

    public init(database: Database, family: ColumnFamily, maxSeriesPerOrganization: Int = 1_000_000) throws {
        self.database = database
        self.family = family
        self.maxSeriesPerOrganization = maxSeriesPerOrganization
        var loaded = State()
        try database.scan(family, lowerBound: Self.idPrefix, upperBound: [UInt8(ascii: "i"), UInt8(ascii: "/") + 1]) { key, value in
            guard key.count == 10, let series = SeriesKey(bytes: Array(value)) else { return true }
            let id = key[2..<10].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            loaded.ids[series] = id
            loaded.keys[id] = series
            loaded.nextID = max(loaded.nextID, id + 1)
            loaded.perOrganization[series.organization, default: 0] += 1
            loaded.byMeasurement[Self.measurementKey(series), default: []].append(id)
            return true
        }
        try database.scan(family, lowerBound: Self.fieldPrefix, upperBound: [UInt8(ascii: "f"), UInt8(ascii: "/") + 1]) { key, value in
            guard value.count == 2, let name = String(validating: key.dropFirst(2), as: UTF8.self) else { return true }
            let id = UInt16(value[0]) << 8 | UInt16(value[1])
            loaded.fields[name] = id
            loaded.fieldNames[id] = name
            return true
        }
        state = Mutex(loaded)
    }

    /// The id of `series`, assigning (and persisting) one when it is new.
    public func id(for series: SeriesKey) throws -> UInt64 {
        if let known = state.withLock({ $0.ids[series] }) { return known }
        return try state.withLock { state in
            if let known = state.ids[series] { return known }
            let organization = series.organization
            guard state.perOrganization[organization, default: 0] < maxSeriesPerOrganization else {
                throw SeriesLimitError.seriesLimit(organization: organization, limit: maxSeriesPerOrganization)
            }
            let id = state.nextID
            let idBytes = withUnsafeBytes(of: id.bigEndian) { Array($0) }
            let batch = WriteBatch()
            batch.put(Self.keyPrefix + series.bytes, idBytes, in: family)
            batch.put(Self.idPrefix + idBytes, series.bytes, in: family)
            try database.write(batch)
            state.nextID = id + 1
            state.ids[series] = id
            state.keys[id] = series
            state.perOrganization[organization, default: 0] += 1
            state.byMeasurement[Self.measurementKey(series), default: []].append(id)
            return id
        }
    }

    /// The ids of many series at once (one lock for the known ones); a series beyond the
    /// organization's limit gets the error instead.
    public func ids(for series: [SeriesKey]) throws -> [Result<UInt64, SeriesLimitError>] {
        var out = [Result<UInt64, SeriesLimitError>?](repeating: nil, count: series.count)
        var missing: [Int] = []
        state.withLock { state in
            for (index, key) in series.enumerated() {
                if let known = state.ids[key] { out[index] = .success(known) } else { missing.append(index) }
            }
        }
        for index in missing {
            do {
                out[index] = .success(try id(for: series[index]))
            } catch let error as SeriesLimitError {
                out[index] = .failure(error)
            }
        }
        return out.map { $0 ?? .failure(.fieldLimit) }
    }

    /// The id of an existing series, or `nil`.
    public func existingID(for series: SeriesKey) -> UInt64? {
        state.withLock { $0.ids[series] }
    }

    /// The series with id `id`.
    public func series(id: UInt64) -> SeriesKey? {
        state.withLock { $0.keys[id] }
    }

    /// Every series id, ascending.
    public func allSeriesIDs() -> [UInt64] {
        state.withLock { $0.keys.keys.sorted() }
    }

    /// Every series of `organization` with `measurement` (for queries), by ascending id.
    public func series(organization: String, measurement: String) -> [(id: UInt64, key: SeriesKey)] {
        state.withLock { state in
            (state.byMeasurement[organization + "\u{0}" + measurement] ?? []).compactMap { id in state.keys[id].map { (id, $0) } }
        }
    }

    /// The series of `organization` with `measurement` from the `offset`-th on (ids are only
    /// ever appended, so a caller that remembers how many it has seen reads only new ones), and
    /// how many there are in all.
    public func series(organization: String, measurement: String, from offset: Int) -> (total: Int, new: [(id: UInt64, key: SeriesKey)]) {
        state.withLock { state in
            let ids = state.byMeasurement[organization + "\u{0}" + measurement] ?? []
            guard offset < ids.count else { return (ids.count, []) }
            return (ids.count, ids[max(0, offset)...].compactMap { id in state.keys[id].map { (id, $0) } })
        }
    }

    /// Organizations with at least one series.
    public var organizations: [String] {
        state.withLock { Array($0.perOrganization.keys) }
    }

    private static func measurementKey(_ series: SeriesKey) -> String {
        series.organization + "\u{0}" + series.measurement
    }

    /// The id of field `name`, assigning one when new.
    public func fieldID(_ name: String) throws -> UInt16 {
        if let known = state.withLock({ $0.fields[name] }) { return known }
        return try state.withLock { state in
            if let known = state.fields[name] { return known }
            guard state.fields.count < Int(UInt16.max) else { throw SeriesLimitError.fieldLimit }
            let id = UInt16(state.fields.count)
            try database.put(Self.fieldPrefix + Array(name.utf8), [UInt8(id >> 8), UInt8(id & 0xFF)], in: family)
            state.fields[name] = id
            state.fieldNames[id] = name
            return id
        }
    }

    /// The id of an existing field, or `nil`.
    public func existingFieldID(_ name: String) -> UInt16? {
        state.withLock { $0.fields[name] }
    }

    /// The name of field `id`.
    public func fieldName(_ id: UInt16) -> String? {
        state.withLock { $0.fieldNames[id] }
    }

    /// Number of series.
    public var seriesCount: Int {
        state.withLock { $0.ids.count }
    }

    /// Series per organization, for the cardinality metric.
    public var seriesCounts: [String: Int] {
        state.withLock { $0.perOrganization }
    }
}

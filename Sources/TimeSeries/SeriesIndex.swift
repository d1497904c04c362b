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

    /// - Parameter tags: sorted by key, keys unique.
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

    /// A `SeriesKey` from its parts.
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
    /// The organization already uses `limit` distinct field names; only new names are refused.
    case fieldLimitPerOrganization(organization: String, limit: Int)
}

extension SeriesLimitError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .seriesLimit(let organization, let limit):
            return "organization \(organization.isEmpty ? "(public)" : organization) is at its limit of \(limit) series; only new series are refused"
        case .fieldLimit:
            return "the field dictionary is full (65535 distinct field names)"
        case .fieldLimitPerOrganization(let organization, let limit):
            return "organization \(organization.isEmpty ? "(public)" : organization) is at its limit of \(limit) distinct field names; only new names are refused"
        }
    }
}

/// Series ids and field ids, persisted in the `series` column family and cached in memory.
///
/// Keys: `k/<series key bytes>` → id u64 BE; `i/<id u64 BE>` → series key bytes;
/// `f/<field name>` → field id u16 BE; `o/<organization length u16 BE ‖ organization ‖ field
/// name>` → field id u16 BE, the field names each organization uses. New ids are written (WAL on)
/// before any sample that uses them, so a crash leaves at worst an unused id. Thread-safety:
/// `Sendable`; lookups of known series take the lock briefly; new series are assigned under it.
///
/// Tenancy: field ids come from one 16-bit dictionary, so each organization may use at most
/// `maxFieldsPerOrganization` distinct names (`--max-fields-per-org`): no tenant can take the
/// dictionary from the others (DESIGN.md §5).
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
        /// The field ids each organization has used.
        var organizationFields: [String: Set<UInt16>] = [:]
    }

    private let state: Mutex<State>
    private let database: Database
    private let family: ColumnFamily
    /// Most series per organization; a new series beyond it is refused (`--max-series-per-org`).
    public let maxSeriesPerOrganization: Int
    /// Most distinct field names per organization; a new name beyond it is refused
    /// (`--max-fields-per-org`).
    public let maxFieldsPerOrganization: Int

    static let keyPrefix = Array("k/".utf8)
    static let idPrefix = Array("i/".utf8)
    static let fieldPrefix = Array("f/".utf8)
    static let organizationFieldPrefix = Array("o/".utf8)

    /// A `SeriesIndex` from its parts.
    public init(database: Database, family: ColumnFamily, maxSeriesPerOrganization: Int = 1_000_000,
                maxFieldsPerOrganization: Int = 1_000) throws {
        self.database = database
        self.family = family
        self.maxSeriesPerOrganization = maxSeriesPerOrganization
        self.maxFieldsPerOrganization = maxFieldsPerOrganization
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
        try database.scan(family, lowerBound: Self.organizationFieldPrefix, upperBound: [UInt8(ascii: "o"), UInt8(ascii: "/") + 1]) { key, value in
            guard value.count == 2, key.count >= 4 else { return true }
            let length = Int(key[2]) << 8 | Int(key[3])
            guard key.count >= 4 + length, let organization = String(validating: key[4..<(4 + length)], as: UTF8.self) else { return true }
            loaded.organizationFields[organization, default: []].insert(UInt16(value[0]) << 8 | UInt16(value[1]))
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

    /// The id of field `name` written by `organization`, assigning one when the name is new and
    /// recording the organization's use of it.
    /// - Throws: ``SeriesLimitError/fieldLimitPerOrganization(organization:limit:)`` when the
    ///   name is new to an organization at its limit, ``SeriesLimitError/fieldLimit`` when the
    ///   dictionary is full.
    public func fieldID(_ name: String, organization: String) throws -> UInt16 {
        let known = state.withLock { state -> UInt16? in
            guard let id = state.fields[name], state.organizationFields[organization]?.contains(id) == true else { return nil }
            return id
        }
        if let known { return known }
        return try state.withLock { state in
            let existing = state.fields[name]
            if let existing, state.organizationFields[organization]?.contains(existing) == true { return existing }
            guard state.organizationFields[organization, default: []].count < maxFieldsPerOrganization else {
                throw SeriesLimitError.fieldLimitPerOrganization(organization: organization, limit: maxFieldsPerOrganization)
            }
            guard existing != nil || state.fields.count < Int(UInt16.max) else { throw SeriesLimitError.fieldLimit }
            let id = existing ?? UInt16(state.fields.count)
            let idBytes = [UInt8(id >> 8), UInt8(id & 0xFF)]
            let batch = WriteBatch()
            if existing == nil { batch.put(Self.fieldPrefix + Array(name.utf8), idBytes, in: family) }
            let organizationBytes = Array(organization.utf8.prefix(Int(UInt16.max)))
            let length = UInt16(organizationBytes.count)
            batch.put(Self.organizationFieldPrefix + [UInt8(length >> 8), UInt8(length & 0xFF)] + organizationBytes + Array(name.utf8),
                      idBytes, in: family)
            try database.write(batch)
            state.fields[name] = id
            state.fieldNames[id] = name
            state.organizationFields[organization, default: []].insert(id)
            return id
        }
    }

    /// How many distinct field names `organization` uses.
    public func fieldCount(organization: String) -> Int {
        state.withLock { $0.organizationFields[organization]?.count ?? 0 }
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

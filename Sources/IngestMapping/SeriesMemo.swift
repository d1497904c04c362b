import CollectorModel
import Ingest
import Synchronization
import TimeSeries

/// The series-id memo of the ingest path, and the rules that turn parsed lines into a series
/// batch (the node tag, string fields, missing timestamps). Part of the ingestion room, in a
/// target of its own because it is pure: the fuzz build instruments it without SwiftNIO,
/// BoringSSL and the rest of `Ingestion`'s dependencies.
///
/// Why the memo sits on the parsed section: bridge nodes send the same few thousand series over
/// and over, and with the parser's ``SeriesSectionCache`` a repeated line already shares one
/// ``SeriesSection`` object. Keeping "which series id did this section resolve to, for which
/// writer" in that object (one atomic word in ``MemoizedSection``) makes a known series cost one
/// load, with no hash and no lock; a side table keyed by section would add both to every line.
/// The parser never reads or writes the memo: its cache only creates sections of the class
/// this memo asks for. The store does not know it exists either: it reports the ids it
/// resolved (``TimeSeriesStore/write(_:now:sync:seriesResolved:)``) and this type records them.
public final class SeriesMemo: Sendable {
    /// Parsed series sections shared by every line-protocol parse (HTTP and UDP), whose
    /// sections carry the memo.
    public let sections: SeriesSectionCache
    private let contexts = Mutex<[String: UInt32]>([:])
    private static let contextLimit = (1 << 24) - 1

    /// A memo whose section cache holds at most `capacity` sections.
    public init(capacity: Int = 1 << 18) {
        sections = SeriesSectionCache(capacity: capacity, sectionType: MemoizedSection.self)
    }

    /// The context of `organization` writing as `node` (or as the organization when `nil`),
    /// interned to a small number so that a section's memo is one atomic word. Numbers start at
    /// 1 and are never reused; past 2^24 contexts new ones get none, and their writes simply
    /// take the path without memo.
    func context(organization: String, node: String?) -> SeriesContext? {
        let name = organization + "\u{0}" + (node ?? "")
        return contexts.withLock { table in
            if let known = table[name] { return SeriesContext(id: known) }
            guard table.count < Self.contextLimit else { return nil }
            let id = UInt32(table.count + 1)
            table[name] = id
            return SeriesContext(id: id)
        }
    }

    /// A batch of parsed lines and, for each of its new series, the section to tell its id.
    public struct Mapped: Sendable {
        public internal(set) var batch = SeriesBatch()
        /// Parallel to `batch.newSeries`.
        var memos: [(section: MemoizedSection, context: SeriesContext)?] = []
        /// The lines refused while mapping (another node's tag, no numeric field).
        public package(set) var errors: [LineError] = []

        /// An empty batch, or `batch` with no series to remember.
        package init(batch: SeriesBatch = SeriesBatch()) {
            self.batch = batch
        }

        /// Records the id the store resolved for new series `index`.
        package func remember(_ index: Int, _ id: UInt64) {
            if memos.indices.contains(index), let memo = memos[index] { memo.section.remember(id, in: memo.context) }
        }

        /// Appends `other` (a later datagram of the same burst).
        package mutating func append(_ other: Mapped) {
            if batch.points.isEmpty, memos.isEmpty {
                batch = other.batch
                memos = other.memos
            } else {
                batch.append(other.batch)
                memos += other.memos
            }
            errors += other.errors
        }
    }

    /// The batch of parsed lines written by `node` (a node id) or, when `nil`, by the
    /// organization itself, and the lines refused on the way.
    ///
    /// Rules: a node's lines carry its `node` tag (added when absent; a line naming another node
    /// is refused), string fields are not stored, and a line without a timestamp gets
    /// `nowNanos`. A line whose section remembers its series for this writer skips the series key.
    public func batch(_ parsed: LineProtocolParser.Result, organization: String, node: String?, nowNanos: Int64) -> Mapped {
        var mapped = Mapped()
        mapped.batch.points.reserveCapacity(parsed.rows.count)
        mapped.batch.fields.reserveCapacity(parsed.fields.count)
        mapped.batch.fieldNames = parsed.fieldKeys
        mapped.batch.organizations = [organization]
        // The same series section maps to the same series only for the same organization and
        // node (a node's lines get its node tag).
        let context = context(organization: organization, node: node)
        for (offset, row) in parsed.rows.enumerated() {
            let section = parsed.sections[offset]
            if let node, let claimed = section.nodeTag, claimed != node {
                mapped.errors.append(LineError(line: row.line, reason: .invalidTag, detail: "node tag \(claimed) is not the writing node"))
                continue
            }
            let start = Int32(mapped.batch.fields.count)
            for field in parsed.fields[row.fieldRange] {
                if let value = field.value.numericValue { mapped.batch.fields.append(SeriesBatch.Field(name: field.key, value: value)) }
            }
            guard mapped.batch.fields.count > Int(start) else {
                mapped.errors.append(LineError(line: row.line, reason: .invalidFieldValue, detail: "no numeric field (string fields are not stored)"))
                continue
            }
            let timestamp = row.timestamp ?? nowNanos
            let memoized = section as? MemoizedSection
            if let context, let memoized, let id = memoized.seriesID(in: context) {
                mapped.batch.add(seriesID: id, timestamp: timestamp, fieldStart: start)
                continue
            }
            var tags = section.tags.map { (key: $0.key, value: $0.value) }
            if let node, section.nodeTag == nil {
                tags.append((key: FleetSchema.Tag.node, value: node))
                tags.sort { $0.key < $1.key }
            }
            let key = SeriesKey(organization: organization, measurement: section.measurement, tags: tags)
            mapped.batch.add(newSeries: SeriesBatch.NewSeries(key: key), timestamp: timestamp, fieldStart: start)
            mapped.memos.append(context.flatMap { context in memoized.map { ($0, context) } })
        }
        return mapped
    }
}

/// A writing context (an organization and, for node tokens, a node), interned by ``SeriesMemo``.
struct SeriesContext: Sendable, Hashable {
    let id: UInt32
}

/// A parsed series section with the series it resolved to for one writing context.
final class MemoizedSection: SeriesSection, @unchecked Sendable {
    /// `context << 40 | series id`; 0 when empty.
    private let memo = Atomic<UInt64>(0)

    required init(measurement: String, tags: [LinePoint.Tag], raw: [UInt8] = []) {
        super.init(measurement: measurement, tags: tags, raw: raw)
    }

    /// The series id remembered for `context`, or `nil`. A section written from another
    /// context simply misses and takes the memo over.
    @inline(__always)
    func seriesID(in context: SeriesContext) -> UInt64? {
        let word = memo.load(ordering: .relaxed)
        guard word >> Self.idBits == UInt64(context.id) else { return nil }
        return word & Self.idMask
    }

    /// Remembers `id` for `context`; ids too large for the memo are not remembered.
    func remember(_ id: UInt64, in context: SeriesContext) {
        guard id <= Self.idMask else { return }
        memo.store(UInt64(context.id) << Self.idBits | id, ordering: .relaxed)
    }

    static let idBits: UInt64 = 40
    static let idMask: UInt64 = (1 << 40) - 1
}

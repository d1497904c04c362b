import Synchronization

/// Parsed series sections (`measurement[,tag=value…]` exactly as sent) shared across parses.
///
/// Bridge nodes send the same few thousand series over and over; parsing their tags into
/// strings and sorting them every time is most of a parse. With a cache, a known section costs
/// one hash of its bytes. Only sections that parsed without error are stored, and a section's
/// parse depends on nothing else, so the results are exactly those of a full parse. Share one
/// cache only between parsers with the same `maxTags`.
///
/// Bounded: when `capacity` sections are held, the cache starts over (simple, and a steady
/// working set refills it at once). Thread-safety: `Sendable`, one lock.
public final class SeriesSectionCache: Sendable {
    public struct Entry: Sendable {
        public var measurement: String
        public var tags: [LinePoint.Tag]
        /// Where the store remembers which series this section resolved to.
        public var memo: SeriesMemo

        public init(measurement: String, tags: [LinePoint.Tag], memo: SeriesMemo = SeriesMemo()) {
            self.measurement = measurement
            self.tags = tags
            self.memo = memo
        }
    }

    struct Key: Hashable {
        var bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    private let entries = Mutex<[Key: Entry]>([:])
    public let capacity: Int

    public init(capacity: Int = 1 << 18) {
        self.capacity = capacity
    }

    public var count: Int { entries.withLock { $0.count } }

    /// The entry of `section`; `scratch` is a reusable buffer for the probe key, so a lookup
    /// does not allocate once it has grown to the longest section.
    func lookup(_ section: UnsafeRawBufferPointer, scratch: inout [UInt8]) -> Entry? {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: section)
        let key = Key(bytes: scratch)
        return entries.withLock { $0[key] }
    }

    func insert(_ section: UnsafeRawBufferPointer, _ entry: Entry) {
        let key = Key(bytes: Array(section))
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = entry
        }
    }
}

/// A memo attached to a cached series section: the series it resolved to, for one writing
/// context (organization and node). The store fills it on the first write of the section and
/// reads it afterwards, skipping the series key and its lookup. A section written from another
/// context simply misses (and takes the memo over).
public final class SeriesMemo: Sendable {
    private let slot = Mutex<(context: String, id: UInt64)?>(nil)

    public init() {}

    /// The series id remembered for `context`, or `nil`.
    public func id(for context: String) -> UInt64? {
        slot.withLock { $0?.context == context ? $0?.id : nil }
    }

    public func remember(_ id: UInt64, for context: String) {
        slot.withLock { $0 = (context, id) }
    }
}

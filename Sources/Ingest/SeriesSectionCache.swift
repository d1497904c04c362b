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

        public init(measurement: String, tags: [LinePoint.Tag]) {
            self.measurement = measurement
            self.tags = tags
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

    func lookup(_ section: UnsafeRawBufferPointer) -> Entry? {
        // The probe key is a temporary array: one allocation, no parse.
        let key = Key(bytes: Array(section))
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

import CollectorModel
import Synchronization

/// One parsed series section (`measurement[,tag=value…]`), shared by every line that sent
/// exactly these bytes.
///
/// Open so that a receiver can attach what it learns about a section to the section itself
/// (the ingestion layer keeps its series-id memo in a subclass; see ``SeriesSectionCache``'s
/// `makeSection`); the parser only reads the parsed parts, which never change.
open class SeriesSection: @unchecked Sendable {
    public final let measurement: String
    /// Sorted by key, keys unique.
    public final let tags: [LinePoint.Tag]
    /// The value of the `node` tag, if any.
    public final let nodeTag: String?
    /// The section's bytes as sent, when they parse to exactly this section by themselves (what
    /// the cache and a sender's order are matched by); empty otherwise.
    public final let raw: [UInt8]

    /// A `SeriesSection` from its parts.
    public required init(measurement: String, tags: [LinePoint.Tag], raw: [UInt8] = []) {
        self.measurement = measurement
        self.tags = tags
        self.nodeTag = tags.first { $0.key == FleetSchema.Tag.node }?.value
        self.raw = raw
    }
}

/// Parsed series sections (`measurement[,tag=value…]` exactly as sent) shared across parses.
///
/// Bridge nodes send the same few thousand series over and over; parsing their tags into
/// strings and sorting them every time is most of a parse. With a cache, a known section costs
/// one hash of its bytes. Only sections that parsed without error are stored, and a section's
/// parse depends on nothing else, so the results are exactly those of a full parse. Share one
/// cache only between parsers with the same `maxTags`.
///
/// Bounded: when `capacity` sections are held, the cache starts over (simple, and a steady
/// working set refills it at once). Thread-safety: `Sendable`; the sections are spread over
/// independently locked stripes by hash, so parallel parsers rarely wait for each other.
public final class SeriesSectionCache: Sendable {
    struct Key: Hashable {
        var bytes: [UInt8]
        var hash: Int

        init(bytes: [UInt8]) {
            self.bytes = bytes
            self.hash = bytes.withUnsafeBytes { Self.hash($0) }
        }

        /// FNV-1a over 8-byte words: fast for short sections, and only used inside the process.
        static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
            var value: UInt64 = 0xcbf2_9ce4_8422_2325
            var index = 0
            while index + 8 <= bytes.count {
                value = (value ^ bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)) &* 0x0000_0100_0000_01b3
                value ^= value >> 29
                index += 8
            }
            while index < bytes.count {
                value = (value ^ UInt64(bytes[index])) &* 0x0000_0100_0000_01b3
                index += 1
            }
            return Int(bitPattern: UInt(value ^ (value >> 32)))
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(hash)
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            lhs.hash == rhs.hash && lhs.bytes == rhs.bytes
        }
    }

    /// One independently locked part of the cache.
    final class Stripe: Sendable {
        let entries = Mutex<[Key: SeriesSection]>([:])
    }

    /// The sections of recent bodies in the order they came, by the body's first section:
    /// a sender repeats its series in the same order body after body, so the parser checks the
    /// bytes of the section expected next before it hashes and looks up (``order(startingWith:)``).
    struct SenderOrders {
        var byFirst: [ObjectIdentifier: [SeriesSection]] = [:]
        var sections = 0
    }

    private let stripes: [Stripe]
    private let orders = Mutex(SenderOrders())
    private let perStripe: Int
    public let capacity: Int
    /// The kind of section this cache's parsers create (``SeriesSection`` or a subclass).
    let sectionType: SeriesSection.Type

    /// - Parameter sectionType: the class of the sections parsers create for this cache, so a
    ///   receiver can keep its own per-section state in a subclass.
    public init(capacity: Int = 1 << 18, sectionType: SeriesSection.Type = SeriesSection.self) {
        self.sectionType = sectionType
        self.capacity = max(1, capacity)
        let stripeCount = min(16, self.capacity)
        self.stripes = (0..<stripeCount).map { _ in Stripe() }
        self.perStripe = self.capacity / stripeCount
    }

    public var count: Int { stripes.reduce(0) { total, stripe in total + stripe.entries.withLock { $0.count } } }

    private func stripe(_ hash: Int) -> Stripe {
        stripes[Int(UInt(bitPattern: hash) >> 7) % stripes.count]
    }

    /// The section of `bytes`; `scratch` is a reusable buffer for the probe key, so a lookup
    /// does not allocate once it has grown to the longest section.
    func lookup(_ bytes: UnsafeRawBufferPointer, scratch: inout [UInt8]) -> SeriesSection? {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: bytes)
        let key = Key(bytes: scratch)
        return stripe(key.hash).entries.withLock { $0[key] }
    }

    /// The sections of the last body that started with `first`, in its order (the body's own
    /// first section included), or `nil`.
    public func order(startingWith first: SeriesSection) -> [SeriesSection]? {
        orders.withLock { $0.byFirst[ObjectIdentifier(first)] }
    }

    /// Remembers `sections` (a body's, in order) as the order of bodies starting with its first.
    /// Bounded like the cache: past `capacity` sections in all orders, only this one is kept.
    func rememberOrder(_ sections: [SeriesSection]) {
        guard let first = sections.first, sections.count <= capacity else { return }
        orders.withLock { orders in
            // The entry holds its first section, so the identifier cannot be reused meanwhile.
            let previous = orders.byFirst.updateValue(sections, forKey: ObjectIdentifier(first))
            orders.sections += sections.count - (previous?.count ?? 0)
            if orders.sections > capacity {
                orders.byFirst = [ObjectIdentifier(first): sections]
                orders.sections = sections.count
            }
        }
    }

    func insert(_ bytes: UnsafeRawBufferPointer, _ section: SeriesSection) {
        // The section's own copy of the bytes when it has one: one array for both.
        let key = section.raw.elementsEqual(bytes) ? Key(bytes: section.raw) : Key(bytes: Array(bytes))
        stripe(key.hash).entries.withLock { entries in
            if entries.count >= perStripe { entries.removeAll(keepingCapacity: true) }
            entries[key] = section
        }
    }
}

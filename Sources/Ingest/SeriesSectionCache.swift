import Synchronization

/// One parsed series section (`measurement[,tag=value…]`), shared by every line that sent
/// exactly these bytes, together with a memo of the series it resolved to.
///
/// The memo holds one (context, series id) pair in a single atomic word: the store fills it on
/// the first write of the section and reads it afterwards, skipping the series key and its
/// lookup. A section written from another context (organization and node) simply misses and
/// takes the memo over.
public final class SeriesSection: Sendable {
    public let measurement: String
    /// Sorted by key, keys unique.
    public let tags: [LinePoint.Tag]
    /// The value of the `node` tag, if any.
    public let nodeTag: String?
    /// `context << 40 | series id`; 0 when empty.
    private let memo = Atomic<UInt64>(0)

    public init(measurement: String, tags: [LinePoint.Tag]) {
        self.measurement = measurement
        self.tags = tags
        self.nodeTag = tags.first { $0.key == "node" }?.value
    }

    /// The series id remembered for `context`, or `nil`.
    @inline(__always)
    public func seriesID(in context: SeriesContext) -> UInt64? {
        let word = memo.load(ordering: .relaxed)
        guard word >> Self.idBits == UInt64(context.id) else { return nil }
        return word & Self.idMask
    }

    /// Remembers `id` for `context`; ids too large for the memo are not remembered.
    public func remember(_ id: UInt64, in context: SeriesContext) {
        guard id <= Self.idMask else { return }
        memo.store(UInt64(context.id) << Self.idBits | id, ordering: .relaxed)
    }

    static let idBits: UInt64 = 40
    static let idMask: UInt64 = (1 << 40) - 1
}

/// A writing context (an organization and, for node tokens, a node) interned to a small number,
/// so that a section's memo is one atomic word. Numbers start at 1 and are never reused; past
/// 2^24 contexts, new ones get none and their writes simply take the uncached path.
public struct SeriesContext: Sendable, Hashable {
    public let id: UInt32

    private static let table = Mutex<[String: UInt32]>([:])
    private static let limit = (1 << 24) - 1

    /// The context of `organization` writing as `node` (or as the organization when `nil`).
    public static func of(organization: String, node: String?) -> SeriesContext? {
        let name = organization + "\u{0}" + (node ?? "")
        return table.withLock { table in
            if let known = table[name] { return SeriesContext(id: known) }
            guard table.count < limit else { return nil }
            let id = UInt32(table.count + 1)
            table[name] = id
            return SeriesContext(id: id)
        }
    }

    private init(id: UInt32) {
        self.id = id
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

    private let stripes: [Stripe]
    private let perStripe: Int
    public let capacity: Int

    public init(capacity: Int = 1 << 18) {
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

    func insert(_ bytes: UnsafeRawBufferPointer, _ section: SeriesSection) {
        let key = Key(bytes: Array(bytes))
        stripe(key.hash).entries.withLock { entries in
            if entries.count >= perStripe { entries.removeAll(keepingCapacity: true) }
            entries[key] = section
        }
    }
}

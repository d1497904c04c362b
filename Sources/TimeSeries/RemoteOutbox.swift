import CollectorModel
import Foundation
import RocksDB
import Synchronization

/// Accepted writes waiting to be forwarded to remote-write destinations, kept in the
/// `remote_outbox` column family.
///
/// Each accepted write is put here in the **same** RocksDB batch as its ingest-log entry, so a
/// write the collector acknowledged is both in the local store and queued for every destination,
/// or neither. A destination's sender reads entries after its cursor, and moves the cursor (and
/// deletes entries every destination has passed) only when the destination answered 2xx. A crash
/// resumes from the cursor: entries are sent at least once, and the receivers drop the samples
/// they already hold (identical series, time and value).
///
/// Keys (docs/format.md): `e ‖ sequence u64 BE` → `written-at ms i64 BE ‖ samples u32 BE ‖ log entry`
/// (the ``IngestLogEntry`` bytes); `c ‖ destination` → the last sequence it accepted, u64 BE.
///
/// Sequences are those of the ingest log. They are taken under the outbox lock and a write
/// counts as pending until its batch committed, so a reader never reads past a write still in
/// flight (and never skips it).
public final class RemoteOutbox: Sendable {
    public static let familyName = "remote_outbox"

    /// One queued write.
    public struct Entry: Sendable {
        public var sequence: UInt64
        /// When it was accepted, milliseconds since the Unix epoch.
        public var writtenAtMillis: Int64
        /// Field samples it holds.
        public var samples: Int
        /// The ``IngestLogEntry`` bytes.
        public var logEntry: [UInt8]
        /// Bytes the entry takes in the outbox (its value), what the backlog counts.
        public var size: Int { 12 + logEntry.count }
    }

    /// What one destination has not been sent yet.
    public struct Backlog: Sendable, Equatable {
        public var bytes = 0
        public var samples = 0
        public var entries = 0

        /// A `Backlog` from its parts.
        public init(bytes: Int = 0, samples: Int = 0, entries: Int = 0) {
            self.bytes = bytes
            self.samples = samples
            self.entries = entries
        }
    }

    private struct Destination {
        /// The last sequence the destination accepted.
        var cursor: UInt64
        var backlog = Backlog()
    }

    private struct State {
        var destinations: [String: Destination]
        /// Sequences taken whose batch has not committed (or failed) yet.
        var inFlight: Set<UInt64> = []
        var newestTaken: UInt64
        var waiters: [Int: (ready: @Sendable (State) -> Bool, continuation: CheckedContinuation<Bool, Never>)] = [:]
        var nextWaiter = 0

        mutating func takeReadyWaiters() -> [CheckedContinuation<Bool, Never>] {
            let snapshot = self
            let woken = waiters.filter { $0.value.ready(snapshot) }.map(\.key)
            return woken.compactMap { waiters.removeValue(forKey: $0)?.continuation }
        }

        /// Every sequence up to this one is committed or failed: readers stop here.
        var readableThrough: UInt64 { inFlight.min().map { $0 - 1 } ?? newestTaken }
    }

    private let database: Database
    private let family: ColumnFamily
    private let state: Mutex<State>
    private let acknowledging = Mutex<Void>(())
    /// Backlog bytes of one destination beyond which writes are refused (``isFull``).
    public let maxBacklogBytes: Int
    /// The newest sequence present when the outbox was opened (the store's sequences go on
    /// after it, even when the ingest log is empty).
    public let newestSequenceAtOpen: UInt64

    /// Opens the outbox for `destinations` (their identities, e.g. URLs without credentials).
    /// Cursors of destinations no longer configured are removed; a new destination starts at
    /// the oldest entry still queued. With no destination, every queued entry is discarded and
    /// `nil` is returned (nothing is queued without a receiver); `discarded` tells how many.
    public static func open(database: Database, destinations: [String], maxBacklogBytes: Int,
                            discarded: (Int) -> Void = { _ in }) throws -> RemoteOutbox? {
        guard let family = try? database.columnFamily(familyName) else {
            guard destinations.isEmpty else { throw RemoteOutboxError.missingFamily }
            return nil
        }
        guard !destinations.isEmpty else {
            var entries = 0
            var anyKey = false
            try database.scan(family) { key, _ in
                anyKey = true
                if key.first == Prefix.entry { entries += 1 }
                return true
            }
            if anyKey { try database.deleteRange(from: [0], to: [0xFF], in: family) }
            if entries > 0 { discarded(entries) }
            return nil
        }
        return try RemoteOutbox(database: database, family: family, destinations: destinations, maxBacklogBytes: maxBacklogBytes)
    }

    enum Prefix {
        static let entry = UInt8(ascii: "e")
        static let cursor = UInt8(ascii: "c")
    }

    private init(database: Database, family: ColumnFamily, destinations: [String], maxBacklogBytes: Int) throws {
        self.database = database
        self.family = family
        self.maxBacklogBytes = maxBacklogBytes
        var cursors: [String: UInt64] = [:]
        var stale: [[UInt8]] = []
        try database.scan(family, lowerBound: [Prefix.cursor], upperBound: [Prefix.cursor + 1]) { key, value in
            let name = String(decoding: key.dropFirst(), as: UTF8.self)
            if destinations.contains(name), value.count == 8 {
                cursors[name] = readBigEndian(UInt64.self, value, at: 0)
            } else {
                stale.append(Array(key))
            }
            return true
        }
        var oldest: UInt64?
        var newest: UInt64 = 0
        var sizes: [(sequence: UInt64, size: Int, samples: Int)] = []
        try database.scan(family, lowerBound: [Prefix.entry], upperBound: [Prefix.entry + 1]) { key, value in
            guard key.count == 9, value.count >= 12 else { return true }
            let sequence = readBigEndian(UInt64.self, key, at: 1)
            oldest = oldest ?? sequence
            newest = sequence
            sizes.append((sequence, value.count, Int(readBigEndian(UInt32.self, value, at: 8))))
            return true
        }
        let startOfNew = (oldest ?? newest + 1) - 1
        var loaded: [String: Destination] = [:]
        let batch = WriteBatch()
        for key in stale { batch.delete(key, in: family) }
        // Entries every destination has passed (left by a crash between a cursor and a delete,
        // or by a destination removed from the configuration).
        let passedByAll = destinations.map { cursors[$0] ?? startOfNew }.min() ?? 0
        for entry in sizes where entry.sequence <= passedByAll { batch.delete(Self.entryKey(entry.sequence), in: family) }
        for name in destinations {
            let cursor = cursors[name] ?? startOfNew
            if cursors[name] == nil { batch.put(Self.cursorKey(name), Self.bigEndian(cursor), in: family) }
            var destination = Destination(cursor: cursor)
            for entry in sizes where entry.sequence > cursor {
                destination.backlog.bytes += entry.size
                destination.backlog.samples += entry.samples
                destination.backlog.entries += 1
            }
            loaded[name] = destination
        }
        if batch.count > 0 { try database.write(batch) }
        // Sequences go on after every entry and every cursor, even when both the outbox and the
        // ingest log are empty, so that no new entry lands at or below a cursor.
        let newestSeen = max(newest, loaded.values.map(\.cursor).max() ?? 0)
        newestSequenceAtOpen = newestSeen
        state = Mutex(State(destinations: loaded, newestTaken: newestSeen))
    }

    // MARK: Write side (the time-series store)

    /// Takes the next sequence with `allocate` under the outbox lock and counts it in flight
    /// until ``finish(_:size:samples:committed:)``.
    public func reserve(_ allocate: () -> UInt64) -> UInt64 {
        state.withLock { state in
            let sequence = allocate()
            state.inFlight.insert(sequence)
            state.newestTaken = max(state.newestTaken, sequence)
            return sequence
        }
    }

    /// Adds the entry of `sequence` to `batch`; returns the bytes it takes.
    public func put(into batch: WriteBatch, sequence: UInt64, logEntry: [UInt8], samples: Int, now: Date) -> Int {
        var value = [UInt8]()
        value.reserveCapacity(12 + logEntry.count)
        let millis = Int64(saturating: (now.timeIntervalSince1970 * 1000).rounded(.down))
        withUnsafeBytes(of: millis.bigEndian) { value.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(clamping: samples).bigEndian) { value.append(contentsOf: $0) }
        value += logEntry
        batch.put(Self.entryKey(sequence), value, in: family)
        return value.count
    }

    /// Ends the write of `sequence`: counts it in every destination's backlog when its batch
    /// committed, and wakes the senders.
    public func finish(_ sequence: UInt64, size: Int, samples: Int, committed: Bool) {
        let ready = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.inFlight.remove(sequence)
            if committed {
                for name in state.destinations.keys {
                    state.destinations[name]?.backlog.bytes += size
                    state.destinations[name]?.backlog.samples += samples
                    state.destinations[name]?.backlog.entries += 1
                }
            }
            return state.takeReadyWaiters()
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// The destination whose backlog reached ``maxBacklogBytes``, if any: new writes are
    /// refused until its sender drains.
    public var fullDestination: (name: String, backlog: Backlog)? {
        state.withLock { state in
            state.destinations.first { $0.value.backlog.bytes >= maxBacklogBytes }.map { ($0.key, $0.value.backlog) }
        }
    }

    // MARK: Read side (the senders)

    /// The configured destinations.
    public var destinations: [String] { state.withLock { Array($0.destinations.keys).sorted() } }

    /// What `destination` has not been sent yet.
    public func backlog(_ destination: String) -> Backlog {
        state.withLock { $0.destinations[destination]?.backlog ?? Backlog() }
    }

    /// The last sequence `destination` accepted.
    public func cursor(_ destination: String) -> UInt64? {
        state.withLock { $0.destinations[destination]?.cursor }
    }

    /// Entries after `destination`'s cursor, oldest first, up to about `maxSamples` samples
    /// (at least one entry when any is readable).
    public func entries(for destination: String, maxSamples: Int) throws -> [Entry] {
        let (cursor, through) = state.withLock { ($0.destinations[destination]?.cursor, $0.readableThrough) }
        guard let cursor, through > cursor else { return [] }
        var out: [Entry] = []
        var samples = 0
        try database.scan(family, lowerBound: Self.entryKey(cursor + 1), upperBound: Self.entryKey(through + 1)) { key, value in
            guard key.count == 9, value.count >= 12 else { return true }
            let entry = Entry(sequence: readBigEndian(UInt64.self, key, at: 1),
                              writtenAtMillis: Int64(bitPattern: readBigEndian(UInt64.self, value, at: 0)),
                              samples: Int(readBigEndian(UInt32.self, value, at: 8)),
                              logEntry: Array(value[12...]))
            if !out.isEmpty, samples + entry.samples > maxSamples { return false }
            samples += entry.samples
            out.append(entry)
            return true
        }
        return out
    }

    /// Moves `destination`'s cursor past `entries` (which ``entries(for:maxSamples:)`` returned,
    /// now accepted or dropped) and deletes the entries every destination has passed.
    public func acknowledge(_ destination: String, _ entries: [Entry]) throws {
        // One at a time: each reads the other cursors as the previous one left them, so the
        // destination that passes an entry last always sees that it may delete it.
        try acknowledging.withLock { _ in try acknowledgeLocked(destination, entries) }
    }

    private func acknowledgeLocked(_ destination: String, _ entries: [Entry]) throws {
        guard let last = entries.last else { return }
        let (oldCursor, minOthers) = state.withLock { state -> (UInt64?, UInt64?) in
            (state.destinations[destination]?.cursor, state.destinations.filter { $0.key != destination }.map(\.value.cursor).min())
        }
        guard let oldCursor, last.sequence > oldCursor else { return }
        let batch = WriteBatch()
        batch.put(Self.cursorKey(destination), Self.bigEndian(last.sequence), in: family)
        // Entries this destination passes that every other one passed too.
        let deletableThrough = min(last.sequence, minOthers ?? .max)
        if deletableThrough > oldCursor {
            for entry in entries where entry.sequence <= deletableThrough {
                batch.delete(Self.entryKey(entry.sequence), in: family)
            }
        }
        // An entry another destination still needs stays; that destination deletes it when it
        // passes it last (its own acknowledgement finds every cursor beyond it).
        try database.write(batch)
        let ready = state.withLock { state in
            state.destinations[destination]?.cursor = last.sequence
            for entry in entries {
                state.destinations[destination]?.backlog.bytes -= entry.size
                state.destinations[destination]?.backlog.samples -= entry.samples
                state.destinations[destination]?.backlog.entries -= 1
            }
            return state.takeReadyWaiters()
        }
        for continuation in ready { continuation.resume(returning: true) }
    }

    /// Waits until an entry after `sequence` is readable. Returns `true` then, or `false` when
    /// the task was cancelled first.
    public func waitForEntries(after sequence: UInt64) async -> Bool {
        await wait { $0.readableThrough > sequence }
    }

    /// Waits until `destination` has accepted (or dropped) every write committed so far:
    /// `true` then, `false` when the task was cancelled first.
    public func waitUntilDrained(_ destination: String) async -> Bool {
        let through = state.withLock { $0.readableThrough }
        return await wait { ($0.destinations[destination]?.cursor ?? .max) >= through }
    }

    private func wait(until ready: @escaping @Sendable (State) -> Bool) async -> Bool {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let result: Bool? = state.withLock { state in
                    if ready(state) { return true }
                    if Task.isCancelled { return false }
                    state.waiters[id] = (ready, continuation)
                    return nil
                }
                if let result { continuation.resume(returning: result) }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: false)
        }
    }

    static func entryKey(_ sequence: UInt64) -> [UInt8] {
        [Prefix.entry] + bigEndian(sequence)
    }

    static func cursorKey(_ destination: String) -> [UInt8] {
        [Prefix.cursor] + Array(destination.utf8)
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}

/// The outbox cannot be used.
public enum RemoteOutboxError: Error, CustomStringConvertible {
    /// The database was opened without the `remote_outbox` column family.
    case missingFamily

    public var description: String {
        switch self {
        case .missingFamily: return "the database has no remote_outbox column family (open it with TimeSeriesStore.columnFamilies())"
        }
    }
}

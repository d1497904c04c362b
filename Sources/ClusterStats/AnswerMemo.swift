import Synchronization

/// Query answers kept for a few seconds: the open days' totals and rows of a group, its minute
/// rows and its newest samples are asked with period-aligned (or rounded) times, so the same
/// stats request within ``ttl`` is the same query, and a dashboard polling every few seconds asks
/// the TSDB at most once per ``ttl``. A stale answer (up to ``maxAge``) is given while one
/// refresh runs in the background; older ones are not used. Answers are therefore at most
/// ``ttl`` plus one refresh behind the TSDB (docs/cluster.md, `--stats-answer-ttl`).
final class AnswerMemo: Sendable {
    struct Entry {
        var answer: QueryAnswer
        /// About what it takes in memory.
        var bytes: Int
        var fetched: ContinuousClock.Instant
        var refreshing = false
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
    }

    let ttl: Duration
    let maxAge: Duration
    let maxBytes: Int
    private let state = Mutex(State())

    init(ttl: Duration = .seconds(10), maxAge: Duration = .seconds(60), maxBytes: Int = 256 << 20) {
        self.ttl = ttl
        self.maxAge = maxAge
        self.maxBytes = maxBytes
    }

    enum Lookup {
        case fresh(QueryAnswer)
        /// Stale: answer with it; `refresh` is true for the one caller that should refresh it.
        case stale(QueryAnswer, refresh: Bool)
        case missing
    }

    func lookup(_ key: String, now: ContinuousClock.Instant = .now) -> Lookup {
        guard ttl > .zero else { return .missing }
        return state.withLock { state in
            guard var entry = state.entries[key] else { return .missing }
            let age = now - entry.fetched
            if age < ttl { return .fresh(entry.answer) }
            guard age < maxAge else { return .missing }
            let refresh = !entry.refreshing
            entry.refreshing = true
            state.entries[key] = entry
            return .stale(entry.answer, refresh: refresh)
        }
    }

    func store(_ key: String, _ answer: QueryAnswer, now: ContinuousClock.Instant = .now) {
        let size = answer.estimatedBytes
        guard ttl > .zero, size <= maxBytes / 4 else { return }
        state.withLock { state in
            if let old = state.entries[key] { state.bytes -= old.bytes }
            // Entries past their age first, then the oldest, until the new one fits.
            if state.bytes + size > maxBytes {
                state.entries = state.entries.filter { now - $0.value.fetched < maxAge }
                state.bytes = state.entries.values.reduce(0) { $0 + $1.bytes }
                while state.bytes + size > maxBytes, let oldest = state.entries.min(by: { $0.value.fetched < $1.value.fetched }) {
                    state.bytes -= oldest.value.bytes
                    state.entries.removeValue(forKey: oldest.key)
                }
            }
            state.entries[key] = Entry(answer: answer, bytes: size, fetched: now)
            state.bytes += size
        }
    }

    /// A refresh that failed: the next caller tries again.
    func refreshFailed(_ key: String) {
        state.withLock { $0.entries[key]?.refreshing = false }
    }
}

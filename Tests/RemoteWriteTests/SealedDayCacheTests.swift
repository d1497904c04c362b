import CollectorTesting
import Testing
import TimeSeries
@testable import ClusterStats
import NIOCore
import Stats

/// The replica's cache of sealed days: totals over any day range are the difference of two
/// running totals, ranges read back what was stored, invalidation forgets from a day on, and
/// everything survives a reopen.
@Suite("Cluster stats: the sealed-day cache")
struct SealedDayCacheTests {
    let directory = TemporaryDirectory(prefix: "sealed-day-cache")

    static func rollup(_ value: Double, online: UInt64 = 0) -> FieldRollup {
        FieldRollup(count: 2, sum: value, min: 0, max: 0, first: 0, firstTime: 0, last: 0, lastTime: 0, onlineCount: 0, onlineMinutes: online)
    }

    /// Days 10…19 of one series, field 1 valued at the day, field 2 on even days only.
    func filled(_ cache: SealedDayCache, group: String = "org\u{0}bucket_traffic") throws -> UInt64 {
        let series = try cache.seriesID(group: group, canonical: "bucket\u{1}b1")
        let days = (UInt32(10)...19).map { day in
            (day: day, fields: [(field: UInt16(1), rollup: Self.rollup(Double(day)))] + (day % 2 == 0 ? [(field: UInt16(2), rollup: Self.rollup(1, online: 5))] : []))
        }
        // Two appends, as two fills would make them.
        try cache.append(group: group, begin: 10, through: 14, rollups: [series: Array(days.prefix(5))])
        try cache.append(group: group, begin: 10, through: 19, rollups: [series: Array(days.dropFirst(5))])
        return series
    }

    @Test func totalsOfAnyRangeAreTwoRunningTotalsApart() throws {
        let cache = try SealedDayCache(path: directory.appending("cache"))
        let series = try filled(cache)
        #expect(cache.coverage("org\u{0}bucket_traffic") == SealedDayCache.Coverage(begin: 10, through: 19))
        for (from, through) in [(UInt32(10), UInt32(19)), (12, 15), (0, 30), (15, 15), (16, 12)] {
            let totals = try cache.totals(series: series, fields: [1, 2, 3], from: from, through: through)
            let days = through >= from ? Array(max(from, 10)...min(through, 19)) : []
            #expect(totals[0] == FieldTotal(count: UInt64(days.count * 2), sum: Double(days.reduce(0, +))), "\(from)...\(through)")
            let even = days.filter { $0 % 2 == 0 }.count
            #expect(totals[1] == FieldTotal(count: UInt64(even * 2), sum: Double(even)), "\(from)...\(through)")
            #expect(totals[2] == FieldTotal())
        }
        let rows = try cache.rows(series: series, fields: [2, 1], from: 13, through: 16)
        #expect(rows[0].map(\.start) == [14 * 86_400, 16 * 86_400])
        #expect(rows[0].allSatisfy { $0.rollup.onlineMinutes == 5 })
        #expect(rows[1].map(\.rollup.sum) == [13, 14, 15, 16])
    }

    @Test func invalidationForgetsFromADayOnAndTheDaysAreFilledAgain() throws {
        let group = "org\u{0}bucket_traffic"
        var cache = try SealedDayCache(path: directory.appending("cache"))
        let series = try filled(cache, group: group)
        try cache.invalidate(fromDay: 15)
        #expect(cache.coverage(group) == SealedDayCache.Coverage(begin: 10, through: 14))
        #expect(try cache.rows(series: series, fields: [1], from: 0, through: 30)[0].map(\.rollup.sum) == [10, 11, 12, 13, 14])
        // Filled again with other values: totals continue from day 14's running totals.
        try cache.append(group: group, begin: 10, through: 16, rollups: [series: [(day: 16, fields: [(field: 1, rollup: Self.rollup(100))])]])
        #expect(try cache.totals(series: series, fields: [1], from: 10, through: 16)[0] == FieldTotal(count: 12, sum: 160))
        // Across a reopen: ids, fields, coverage and records.
        cache.close()
        cache = try SealedDayCache(path: directory.appending("cache"))
        #expect(cache.existingSeriesID(group: group, canonical: "bucket\u{1}b1") == series)
        #expect(try cache.seriesID(group: group, canonical: "bucket\u{1}b2") == series + 1)
        #expect(cache.coverage(group) == SealedDayCache.Coverage(begin: 10, through: 16))
        #expect(try cache.totals(series: series, fields: [1], from: 11, through: 16)[0] == FieldTotal(count: 10, sum: 150))
        // An invalidation before the beginning forgets the group.
        try cache.invalidate(fromDay: 3)
        #expect(cache.coverage(group) == nil)
        #expect(try cache.rows(series: series, fields: [1], from: 0, through: 30)[0].isEmpty)
    }

    @Test func combinedQueriesStayWithinTheBudgetAndNameTheirParts() {
        let expressions = (0..<10).map { "sum_over_time(metric_\($0){organization=\"o\"}[1d])" }
        let one = PrometheusRollupSource.combine(expressions, budget: 12_000)
        #expect(one.count == 1 && one[0].parts == 0..<10)
        #expect(one[0].query.contains(#"label_replace(sum_over_time(metric_9{organization="o"}[1d]), "__fb_part", "9", "", "")"#))
        let split = PrometheusRollupSource.combine(expressions, budget: 200)
        #expect(split.count > 1 && split.allSatisfy { $0.query.count <= 200 || $0.parts.count == 1 })
        #expect(split.flatMap { Array($0.parts) } == Array(0..<10))
        var labels = ["__fb_part": "3", "bucket": "b"]
        #expect(PrometheusRollupSource.part(of: &labels, in: 0..<5) == 3 && labels == ["bucket": "b"])
        var foreign = ["__fb_part": "7"]
        #expect(PrometheusRollupSource.part(of: &foreign, in: 0..<5) == nil)
    }
}

/// The one-pass reader of query answers: the shapes of `query` and `query_range`, escapes, and
/// hostile bytes refused without a trap.
@Suite("Cluster stats: query answers read in one pass")
struct QueryAnswerTests {
    static let matrix = #"""
    {"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"m","bucket":"b\"1\\ é\u00e9\ud83d\ude00","__fb_part":"2"},"values":[[1796601599.999,"5"],[1796687999.999,"+Inf"],[1.5e3,"-2.5e-3"]]},{"metric":{},"values":[]}]},"stats":{"seriesFetched":"3","executionTimeMsec":0}}
    """#

    func read(_ text: String) throws -> QueryAnswer {
        try Array(text.utf8).withUnsafeBytes { try QueryAnswer($0, what: "test") }
    }

    @Test func matricesAndVectorsReadAsTheyAre() throws {
        let answer = try read(Self.matrix)
        #expect(answer.series.count == 2)
        #expect(answer.series[0].labels == ["bucket": "b\"1\\ éé😀"] && answer.series[0].part == 2)
        #expect(answer.series[0].canonical == PrometheusRollupSource.canonical(["bucket": "b\"1\\ éé😀"]))
        #expect(answer.series[0].points.map(\.0) == [1796601599.999, 1796687999.999, 1500])
        #expect(answer.series[0].points.map(\.1) == [5, .infinity, -0.0025])
        #expect(answer.series[1].labels.isEmpty && answer.series[1].points.isEmpty)
        let vector = try read(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"b"},"value":[17,"NaN"]}]}}"#)
        #expect(vector.series.count == 1 && vector.series[0].points.count == 1 && vector.series[0].points[0].1.isNaN)
    }

    @Test func damagedAnswersAreRefusedNotTrapped() throws {
        #expect(throws: StatsSourceError.self) { try read(#"{"status":"error","error":"x"}"#) }
        #expect(throws: StatsSourceError.self) { try read("<html>bad gateway</html>") }
        #expect(throws: StatsSourceError.self) { try read(String(repeating: "[", count: 10_000)) }
        // Every truncation of a valid answer, and every single-byte change, reads or throws.
        let bytes = Array(Self.matrix.utf8)
        for end in 0..<bytes.count {
            _ = try? Array(bytes[..<end]).withUnsafeBytes { try QueryAnswer($0, what: "test") }
        }
        for index in stride(from: 0, to: bytes.count, by: 3) {
            var changed = bytes
            changed[index] = [0x22, 0x5C, 0x7B, 0x5D, 0x2C, 0x00, 0xFF][index % 7]
            _ = try? changed.withUnsafeBytes { try QueryAnswer($0, what: "test") }
        }
    }
}

/// Day-aligned answers kept a few seconds: fresh, then stale with one refresher, then gone;
/// the byte budget evicts the oldest.
@Suite("Cluster stats: the answer memo")
struct AnswerMemoTests {
    static func answer(_ canonical: String) -> QueryAnswer {
        QueryAnswer(series: [QueryAnswer.Series(labels: [:], points: [], part: 0, canonical: canonical)])
    }

    @Test func freshThenStaleWithOneRefresherThenGone() {
        let memo = AnswerMemo(ttl: .seconds(10), maxAge: .seconds(60), maxBytes: 1 << 20)
        let start = ContinuousClock.now
        if case .missing = memo.lookup("q", now: start) {} else { Issue.record("an empty memo answered") }
        memo.store("q", Self.answer("one"), now: start)
        if case .fresh(let kept) = memo.lookup("q", now: start + .seconds(9)) { #expect(kept.series.first?.canonical == "one") } else { Issue.record("not fresh") }
        guard case .stale(_, let first) = memo.lookup("q", now: start + .seconds(11)),
              case .stale(_, let second) = memo.lookup("q", now: start + .seconds(12)) else {
            Issue.record("not stale")
            return
        }
        #expect(first && !second)
        memo.refreshFailed("q")
        if case .stale(_, let again) = memo.lookup("q", now: start + .seconds(13)) { #expect(again) } else { Issue.record("not stale") }
        if case .missing = memo.lookup("q", now: start + .seconds(61)) {} else { Issue.record("kept past its age") }
        let none = AnswerMemo(ttl: .zero)
        none.store("q", Self.answer("x"))
        if case .missing = none.lookup("q") {} else { Issue.record("a zero TTL kept an answer") }
    }

    @Test func theByteBudgetEvictsTheOldest() {
        // Each answer counts 64 + 96 bytes: four fit in 640.
        let memo = AnswerMemo(ttl: .seconds(10), maxAge: .seconds(60), maxBytes: 640)
        let start = ContinuousClock.now
        for index in 0..<5 { memo.store("q\(index)", Self.answer(""), now: start + .milliseconds(Int64(index))) }
        if case .missing = memo.lookup("q0", now: start + .seconds(1)) {} else { Issue.record("the oldest was kept") }
        if case .fresh = memo.lookup("q4", now: start + .seconds(1)) {} else { Issue.record("the newest was evicted") }
        if case .fresh = memo.lookup("q1", now: start + .seconds(1)) {} else { Issue.record("more than the oldest was evicted") }
    }
}

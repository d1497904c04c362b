import Testing
import TimeSeries
@testable import ClusterStats
@testable import Stats

@Suite("Cluster stats: a TSDB's numbers never trap, averages agree across stores")
struct StatsSourceAnswerTests {
    static func empty() -> FieldRollup {
        FieldRollup(count: 0, sum: 0, min: 0, max: 0, first: 0, firstTime: 0, last: 0, lastTime: 0, onlineCount: 0, onlineMinutes: 0)
    }

    @Test func absurdValuesFromTheSourceSaturateInsteadOfTrapping() {
        for value in [Double.nan, .infinity, -.infinity, 1e300, -1e300, 18_446_744_073_709_551_616.0] {
            var rollup = Self.empty()
            for stat in [PrometheusRollupSource.Stat.count, .sum, .last, .lastTime, .onlineMinutes] {
                stat.apply(value, to: &rollup)
            }
            #expect(value.isNaN || value < 0 ? rollup.count == 0 : rollup.count > 0)
            _ = PrometheusRollupSource.nanoseconds(ofSeconds: value)
        }
        var rollup = Self.empty()
        PrometheusRollupSource.Stat.count.apply(-5, to: &rollup)
        #expect(rollup.count == 0)
        PrometheusRollupSource.Stat.lastTime.apply(1_773_100_859.999, to: &rollup)
        #expect(rollup.lastTime == 1_773_100_859_999_000_000)
        #expect(PrometheusRollupSource.nanoseconds(ofSeconds: .infinity) == .max)
        #expect(PrometheusRollupSource.nanoseconds(ofSeconds: .nan) == 0)
    }

    @Test func averagesAgreeWhicheverOrderTheSumWasTakenIn() {
        // The local store sums per minute, then minutes; a TSDB sums sample after sample.
        let minutesFirst = (0.1 + 0.2) + 0.3
        let oneByOne = 0.1 + (0.2 + 0.3)
        #expect(minutesFirst != oneByOne)
        #expect(FleetStats.mean(minutesFirst, 3) == FleetStats.mean(oneByOne, 3))
        #expect(FleetStats.mean(minutesFirst, 3) == 0.2)
        #expect(FleetStats.mean(1, 0) == 0)
    }
}

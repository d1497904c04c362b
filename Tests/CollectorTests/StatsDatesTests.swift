import Foundation
import Stats
import Testing

/// The stats API's date forms against Foundation's formatter and hand-checked cases.
@Suite("Stats dates")
struct StatsDatesTests {
    @Test func timesFormatLikeFoundationsISO8601() {
        var generator = SystemRandomNumberGenerator()
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for _ in 0..<5000 {
            // Foundation's Date holds a Double, so its milliseconds can be off by one far from
            // 1970: compare whole seconds with it, and the milliseconds with the input.
            let seconds = Int64.random(in: 0...253_402_300_799, using: &generator)
            let millis = Int64.random(in: 0...999, using: &generator)
            let text = StatsDates.format(milliseconds: seconds * 1000 + millis)
            let whole = Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(style)
            #expect(text.prefix(20) == whole.prefix(20), "\(seconds)")
            #expect(text.suffix(4) == String(format: "%03dZ", millis), "\(text)")
        }
        #expect(StatsDates.format(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
    }

    @Test func clientDateFormsParse() {
        // ddmmyyyy as the client writes it with Number.toString(): the leading zero may be lost.
        #expect(StatsDates.parseDDMMYYYY("15012024") == 19_737)
        #expect(StatsDates.parseDDMMYYYY("1022024") == 19_754)
        #expect(StatsDates.parseDDMMYYYY("29022024") == 19_782)
        #expect(StatsDates.parseDDMMYYYY("29022023") == nil)
        #expect(StatsDates.parseDDMMYYYY("32012024") == nil)
        #expect(StatsDates.parseDDMMYYYY("1x022024") == nil)
        #expect(StatsDates.parseDDMMYYYY("123") == nil)
        let day = StatsDates.parseISO("2024-02-01")
        #expect(day?.dateOnly == true && day?.date.timeIntervalSince1970 == 1_706_745_600)
        let time = StatsDates.parseISO("2024-02-01T00:00:00.000Z")
        #expect(time?.dateOnly == false && time?.date.timeIntervalSince1970 == 1_706_745_600)
        #expect(StatsDates.parseISO("2024-02-01T02:00:00+02:00")?.date.timeIntervalSince1970 == 1_706_745_600)
        #expect(StatsDates.parseISO("2024-13-01") == nil)
        #expect(StatsDates.parseISO("yesterday") == nil)
    }
}

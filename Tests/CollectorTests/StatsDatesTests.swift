import CollectorModel
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
        #expect(day?.dateOnly == true && day?.time.seconds == 1_706_745_600)
        let time = StatsDates.parseISO("2024-02-01T00:00:00.000Z")
        #expect(time?.dateOnly == false && time?.time.seconds == 1_706_745_600)
        #expect(StatsDates.parseISO("2024-02-01T02:00:00+02:00")?.time.seconds == 1_706_745_600)
        #expect(StatsDates.parseISO("2024-13-01") == nil)
        #expect(StatsDates.parseISO("yesterday") == nil)
    }

    /// Dates a hostile caller may send: outside the range every layer can compute with, or not
    /// dates at all; each is refused (`nil`), never trapped on.
    @Test(arguments: ["9999-12-31", "2262-04-12", "2262-01-01", "3000-01-01T00:00:00Z", "2262-04-11T23:47:17.000Z",
                      "1969-12-31T23:59:59Z", "0000-01-01", "1677-09-21T00:12:43Z", "99999-01-01T00:00:00Z",
                      "+99999-01-01T00:00:00Z", "2024-02-30", "2024-02-01T25:00:00Z", "2024-02-01T00:00:00+99:00",
                      "1970-01-01T00:00:00+01:00", String(repeating: "9", count: 10_000)])
    func outOfRangeISODatesAreRefused(_ text: String) {
        #expect(StatsDates.parseISO(text) == nil)
    }

    /// The strict parser agrees with Foundation on every well-formed date-time it accepts.
    @Test func strictISOParserAgreesWithFoundation() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let seconds = Int64.random(in: 0...9_214_646_399, using: &generator)
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            for text in [date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)), date.formatted(.iso8601),
                         date.formatted(Date.ISO8601FormatStyle(timeZone: try #require(TimeZone(secondsFromGMT: -19_800))))] {
                let parsed = ISO8601.parse(text)
                #expect(parsed?.seconds == seconds && parsed?.dateOnly == false, "\(text)")
            }
        }
        #expect(ISO8601.parse("2024-02-01T10:00Z")?.seconds == 1_706_781_600)
        #expect(ISO8601.parse("2024-02-01T10:00:00")?.seconds == 1_706_781_600)
        #expect(ISO8601.parse("2024-02-01T12:00:00+0200")?.seconds == 1_706_781_600)
        #expect(ISO8601.parse("2016-12-31T23:59:60Z")?.seconds == 1_483_228_799)
        for bad in ["2024-02-01T24:00:00Z", "2024-02-01T10:60:00Z", "2024-02-01T10:00:61Z", "2024-02-01T10:00:00.Z", "2024-02-01T10:00:00.1234567890Z",
                    "2024-02-01T10:00:00+24:00", "2024-02-01T10:00:00+02:60", "2024-02-01T10:00:00ZZ", "2024-02-01 10:00:00Z", "2024-2-01",
                    "20240201", "2024-02-01T", "2024-02-01T10", "２０２４-02-01", "-2024-02-01", ""] {
            #expect(ISO8601.parse(bad) == nil, "\(bad)")
        }
    }

    /// The basic form of AWS signatures (`X-Amz-Date`) goes through the same calendar checks.
    @Test func basicFormParsesWithTheSameChecks() {
        #expect(ISO8601.parseBasic("20240201T100000Z") == 1_706_781_600)
        #expect(ISO8601.parseBasic("20161231T235960Z") == 1_483_228_799)
        for bad in ["20240230T100000Z", "20241301T100000Z", "20240201T240000Z", "20240201T106000Z", "20240201T100000",
                    "2024-02-01T10:00:00Z", "20240201t100000Z", "2024020 T100000Z", ""] {
            #expect(ISO8601.parseBasic(bad) == nil, "\(bad)")
        }
    }

    @Test func theLastSupportedDayParses() {
        #expect(StatsDates.parseISO("2261-12-31")?.time.seconds == 9_214_560_000)
        #expect(StatsDates.parseISO("2261-12-31T23:59:59Z")?.time == UnixTime.latest)
        #expect(StatsDates.parseISO("1970-01-01T00:00:00Z")?.time == UnixTime.earliest)
    }
}

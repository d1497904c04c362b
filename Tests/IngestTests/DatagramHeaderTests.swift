import Foundation
import Ingest
import Testing

@Suite("UDP #fb1 header")
struct DatagramHeaderTests {
    func parse(_ text: String) -> DatagramHeader.Parsed {
        Array(text.utf8).withUnsafeBytes { DatagramHeader.parse($0) }
    }

    @Test func aValidHeaderNamesNodeTimeMacAndBody() throws {
        let mac = Data(repeating: 7, count: 32).base64EncodedString()
        let datagram = "#fb1 node-1 1700000000 \(mac)\ncpu f=1\n"
        guard case .header(let header) = parse(datagram) else { Issue.record("not parsed"); return }
        #expect(header.nodeID == "node-1")
        #expect(header.seconds == 1_700_000_000)
        #expect(header.mac == Array(repeating: 7, count: 32))
        #expect(String(decoding: Array(datagram.utf8)[header.bodyOffset...], as: UTF8.self) == "cpu f=1\n")
    }

    @Test func withoutThePrefixTheHeaderIsAbsent() {
        #expect(parse("cpu f=1\n") == .absent)
        #expect(parse("#fb2 n 1 AAAA\nx") == .absent)
        #expect(parse("") == .absent)
    }

    @Test func malformedHeadersAreRefusedWithAReason() {
        for bad in ["#fb1 n 1 AAAA", "#fb1 n x AAAA\nb", "#fb1 n 99999999999999999999 AAAA\nb", "#fb1  n 1 AAAA\nb",
                    "#fb1 n 1 !!!\nb", "#fb1 n 1 AAAA extra\nb", "#fb1 n 1 \nb"] {
            guard case .malformed(let reason) = parse(bad) else { Issue.record("accepted \(bad)"); continue }
            #expect(!reason.isEmpty)
        }
        // A first line beyond the limit is refused without splitting it.
        let long = "#fb1 " + String(repeating: "n", count: DatagramHeader.maxLength) + " 1 AAAA\nb"
        #expect(parse(long) == .malformed("header longer than \(DatagramHeader.maxLength) bytes"))
        #expect(parse("#fb1 -9223372036854775808 -9223372036854775808 AAAA\nb") != .absent)
    }
}

import Testing
@testable import RemoteWrite

@Suite struct SnappyTests {
    @Test func roundTripsAndRefusesDamage() throws {
        let text = Array(String(repeating: "node_status_status{organization=\"acme\"} ", count: 200).utf8)
        let compressed = Snappy.compress(text)
        #expect(compressed.count < text.count / 4)
        #expect(Snappy.decompress(compressed, maxLength: text.count) == text)
        // A block announcing more than the bound is refused before anything is allocated.
        #expect(Snappy.decompress(compressed, maxLength: text.count - 1) == nil)
        #expect(Snappy.decompress([0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2], maxLength: 1 << 20) == nil)
        #expect(Snappy.decompress(Array(compressed.dropLast(3)), maxLength: text.count) == nil)
        #expect(Snappy.compress([]).isEmpty == false)
        #expect(Snappy.decompress(Snappy.compress([]), maxLength: 0) == [])
    }
}

import Foundation
import FuzzTargets
import Testing

/// Replays the committed seed corpus and every input a fuzzer once stopped on (`Fuzz/`) through
/// the fuzz targets in the ordinary build: a regression there fails here, without libFuzzer.
@Suite("fuzz corpus replay")
struct CorpusReplayTests {
    static let fuzzDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz")

    static func files(_ folder: String, _ target: String) -> [URL] {
        let directory = fuzzDirectory.appendingPathComponent(folder).appendingPathComponent(target)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("every target has a seed corpus and a dictionary", arguments: FuzzTargets.all.keys.sorted())
    func everyTargetHasSeeds(target: String) {
        #expect(Self.files("corpus", target).count >= 3, "Fuzz/corpus/\(target) needs seeds")
        #expect(FileManager.default.fileExists(atPath: Self.fuzzDirectory.appendingPathComponent("dictionaries/\(target).dict").path))
    }

    @Test("the corpus and the regressions replay without a failed invariant", arguments: FuzzTargets.all.keys.sorted())
    func replay(target: String) throws {
        let run = try #require(FuzzTargets.all[target])
        for file in Self.files("corpus", target) + Self.files("regressions", target) {
            let data = try Data(contentsOf: file)
            data.withUnsafeBytes { run($0) }
        }
    }
}

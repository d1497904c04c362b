import FuzzTargets
import Foundation

// One executable for every fuzz target (docs/fuzzing.md). Built by `scripts/fuzz.sh` with
// `-sanitize=fuzzer,address -D FUZZING`, libFuzzer drives `LLVMFuzzerTestOneInput` and the target
// comes from `FLASHBACK_FUZZ_TARGET`. In an ordinary build it replays files instead:
// `flashback-fuzz TARGET FILE|DIR…`.

#if FUZZING
nonisolated(unsafe) private var selected: FuzzTargets.Target?

/// libFuzzer's initialisation hook: picks the target named by `FLASHBACK_FUZZ_TARGET`.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = ProcessInfo.processInfo.environment["FLASHBACK_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTargets.all[name] else {
        FileHandle.standardError.write(Data("FLASHBACK_FUZZ_TARGET must be one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))\n".utf8))
        exit(2)
    }
    selected = target
    return 0
}

/// libFuzzer's entry point: runs the selected target on one input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    selected?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
#else
@main
struct ReplayCorpus {
    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTargets.all[name] else {
            print("usage: flashback-fuzz TARGET FILE|DIR…  (targets: \(FuzzTargets.all.keys.sorted().joined(separator: ", ")))")
            exit(2)
        }
        var count = 0
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: path).sorted().map { "\(path)/\($0)" }
                : [path]
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { target($0) }
                count += 1
            }
        }
        print("\(name): replayed \(count) input(s)")
    }
}
#endif

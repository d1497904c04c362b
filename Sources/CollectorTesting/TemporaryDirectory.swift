import Foundation

/// A fresh directory under the system's temporary directory, removed with everything in it when
/// the value is deinitialised (or when ``remove()`` is called).
public final class TemporaryDirectory: @unchecked Sendable {
    /// The directory's absolute path.
    public let path: String

    /// A `TemporaryDirectory` from its parts.
    public init(prefix: String = "flashback-test") {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8))"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            preconditionFailure("cannot create a temporary directory at \(path): \(error)")
        }
    }

    /// A path inside the directory.
    public func appending(_ component: String) -> String {
        (path as NSString).appendingPathComponent(component)
    }

    /// Removes the directory now.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { remove() }
}

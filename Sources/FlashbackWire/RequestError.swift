import Foundation

/// A request value the API refuses: the route answers 400 with ``message``, which names the
/// parameter (DESIGN.md §5).
public struct RequestError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String

    /// A `RequestError` from its parts.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

extension Optional where Wrapped == String {
    /// The contract treats `''`, `undefined` and `null` as absent (DESIGN.md §4.10).
    public var nonEmpty: String? {
        guard let value = self?.trimmingCharacters(in: .whitespaces), !value.isEmpty, value != "undefined", value != "null" else { return nil }
        return value
    }
}

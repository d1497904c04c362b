/// A refused catalog operation, with a message that is safe to show to the caller.
///
/// The HTTP layer maps ``Kind`` to a status (400, 403, 404, 429); the message never contains
/// secrets or another organization's data.
public struct CatalogError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of refusal, which decides the HTTP status.
    public enum Kind: Sendable, Equatable {
        /// The request is malformed or names something that cannot be (400).
        case invalid
        /// The caller may not do this (403).
        case forbidden
        /// No such entity, or not one the caller sees (404).
        case notFound
        /// An organization quota is exhausted (429).
        case quotaExceeded
    }

    public let kind: Kind
    public let message: String

    /// A `CatalogError` from its parts.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// A malformed or unacceptable request (400).
    public static func invalid(_ message: String) -> CatalogError { CatalogError(.invalid, message) }
    /// An operation the caller may not perform (403).
    public static func forbidden(_ message: String) -> CatalogError { CatalogError(.forbidden, message) }
    /// No such entity, or not one the caller sees (404).
    public static func notFound(_ message: String) -> CatalogError { CatalogError(.notFound, message) }
}

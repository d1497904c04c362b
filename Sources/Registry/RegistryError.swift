/// A refused registry operation, with a message that is safe to show to the caller.
///
/// The HTTP layer maps ``Kind`` to a status (400, 403, 404); the message never contains secrets
/// or another organization's data.
public struct RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The class of refusal, which decides the HTTP status.
    public enum Kind: Sendable, Equatable {
        /// The request is malformed or its signature, timestamp or content is not acceptable (400).
        case invalid
        /// The caller may not do this (403).
        case forbidden
        /// No such entity, or not one of the caller's (404).
        case notFound
        /// The entity exists in a state that does not allow the operation (400 in the contract).
        case conflict
        /// An organization quota is exhausted (429).
        case quotaExceeded
    }

    public let kind: Kind
    public let message: String

    /// A `RegistryError` from its parts.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// A malformed or unacceptable request (400).
    public static func invalid(_ message: String) -> RegistryError { RegistryError(.invalid, message) }
    /// An operation the caller may not perform (403).
    public static func forbidden(_ message: String) -> RegistryError { RegistryError(.forbidden, message) }
    /// No such entity, or not one the caller sees (404).
    public static func notFound(_ message: String) -> RegistryError { RegistryError(.notFound, message) }
}

/// A refused registry operation, with a message that is safe to show to the caller.
///
/// The HTTP layer maps ``Kind`` to a status (400, 403, 404); the message never contains secrets
/// or another organization's data.
public struct RegistryError: Error, Equatable, Sendable, CustomStringConvertible {
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

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func invalid(_ message: String) -> RegistryError { RegistryError(.invalid, message) }
    public static func forbidden(_ message: String) -> RegistryError { RegistryError(.forbidden, message) }
    public static func notFound(_ message: String) -> RegistryError { RegistryError(.notFound, message) }
}

/// A member's role in an organization, with the numeric values the official Flashback client uses
/// (`USER 0, BILLING 1, WORKSPACES 2, ADMINISTRATORS 254, OWNER 255`).
public struct OrganizationRole: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int

    /// A `OrganizationRole` from its parts.
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let user = OrganizationRole(rawValue: 0)
    public static let billing = OrganizationRole(rawValue: 1)
    public static let workspaces = OrganizationRole(rawValue: 2)
    public static let administrators = OrganizationRole(rawValue: 254)
    public static let owner = OrganizationRole(rawValue: 255)

    /// The roles that may manage an organization (keys, nodes, buckets): OWNER and ADMINISTRATORS.
    public var canAdministerOrganization: Bool { self == .owner || self == .administrators }

    /// Parses a role name (`owner`, `admin`/`administrators`, `user`, `billing`, `workspaces`,
    /// case-insensitive) or a number from 0 to 255.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "owner": self = .owner
        case "admin", "administrator", "administrators": self = .administrators
        case "user": self = .user
        case "billing": self = .billing
        case "workspace", "workspaces": self = .workspaces
        default:
            guard let number = Int(text), (0...255).contains(number) else { return nil }
            self.init(rawValue: number)
        }
    }

    public var description: String {
        switch self {
        case .owner: return "OWNER"
        case .administrators: return "ADMINISTRATORS"
        case .user: return "USER"
        case .billing: return "BILLING"
        case .workspaces: return "WORKSPACES"
        default: return String(rawValue)
        }
    }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(Int.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

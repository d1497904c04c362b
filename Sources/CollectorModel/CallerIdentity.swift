/// Who is calling an authenticated endpoint, as established from a verified token.
///
/// Handlers scope every read and write to ``organization`` (and, where the contract says so,
/// to ``workspaces``); nothing about another organization is ever answered.
public struct CallerIdentity: Sendable, Hashable, Codable {
    /// The organization the caller acts for (JWT claim `org`).
    public var organization: String
    /// The user id (JWT claim `sub`).
    public var user: String
    /// The caller's role in ``organization`` (JWT claim `role`).
    public var role: OrganizationRole
    /// Workspaces the caller may see (JWT claim `workspaces`); empty means all of the organization.
    public var workspaces: [String]

    /// A `CallerIdentity` from its parts.
    public init(organization: String, user: String, role: OrganizationRole, workspaces: [String] = []) {
        self.organization = organization
        self.user = user
        self.role = role
        self.workspaces = workspaces
    }
}

import CollectorModel
import Foundation
import JWTKit

/// The claims of a Flashback user token (DESIGN.md §4.11): `sub`, `org`, `role`, optional
/// `workspaces`, and a mandatory `exp`.
public struct AccessTokenClaims: JWTPayload, Equatable {
    public var sub: SubjectClaim
    public var org: String
    public var role: Int
    public var workspaces: [String]?
    public var exp: ExpirationClaim
    public var iat: IssuedAtClaim?

    /// A `AccessTokenClaims` from its parts.
    public init(identity: CallerIdentity, issuedAt: Date, expiresAt: Date) {
        self.sub = SubjectClaim(value: identity.user)
        self.org = identity.organization
        self.role = identity.role.rawValue
        self.workspaces = identity.workspaces.isEmpty ? nil : identity.workspaces
        self.exp = ExpirationClaim(value: expiresAt)
        self.iat = IssuedAtClaim(value: issuedAt)
    }

    /// Signature checks happen before this; here only the time claims are checked.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }

    /// The caller these claims describe.
    public var identity: CallerIdentity {
        CallerIdentity(organization: org, user: sub.value, role: OrganizationRole(rawValue: role), workspaces: workspaces ?? [])
    }
}

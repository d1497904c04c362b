import CollectorAuth
import CollectorModel
import CollectorStore

extension CollectorProcess {
    /// A user token for `organization`, signed with the secret the collector generated into its
    /// data directory (`jwt.secret`), as `flashback-collector token` would mint it.
    public func userToken(organization: String, role: OrganizationRole = .owner, user: String = "ops") async throws -> String {
        let secret = try SecretFile.load(at: dataDirectory + "/jwt.secret", byteCount: 32)
        return try await TokenAuthority.make(keys: TokenKeys(hmacSecret: secret))
            .mint(for: CallerIdentity(organization: organization, user: user, role: role), lifetime: 600)
    }

    /// `Authorization: Bearer …` for ``userToken(organization:role:user:)``.
    public func authorization(organization: String, role: OrganizationRole = .owner) async throws -> [(String, String)] {
        [("Authorization", "Bearer \(try await userToken(organization: organization, role: role))")]
    }
}

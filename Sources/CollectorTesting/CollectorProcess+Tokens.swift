import Foundation
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

extension CollectorProcess {
    /// A cluster-mode replica `name` on the PostgreSQL at `databaseURL`, with the secrets every
    /// replica of `directory` shares (the JWT secret copied into its data directory, one master
    /// key file), as a deployment would run them.
    /// A replica started again after a crash keeps its data directory and passes its `httpPort`.
    public static func replica(_ name: String, in directory: TemporaryDirectory, databaseURL: String, arguments: [String],
                               httpPort: Int = freeLoopbackPort()) throws -> CollectorProcess {
        let data = directory.appending(name)
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let shared = directory.appending("jwt.secret")
        _ = try SecretFile.loadOrCreate(at: shared, byteCount: 32)
        if !FileManager.default.fileExists(atPath: data + "/jwt.secret") {
            try FileManager.default.copyItem(atPath: shared, toPath: data + "/jwt.secret")
        }
        _ = try MasterKey.loadOrCreate(at: directory.appending("master.key"))
        return try CollectorProcess(dataDirectory: data, logDirectory: directory.path, httpPort: httpPort, arguments: [
            "--registry-url", databaseURL, "--master-key-file", directory.appending("master.key"),
        ] + arguments)
    }
}

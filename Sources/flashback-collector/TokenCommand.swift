import ArgumentParser
import CollectorAuth
import CollectorModel
import Foundation

/// `flashback-collector token`: prints a user token signed with the configured HS256 secret.
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Mint a user token (JWT, HS256) for operators and tests."
    )

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Organization id (claim org).")
    var org: String

    @Option(name: .long, help: "User id (claim sub).")
    var user: String

    @Option(name: .long, help: "Role: owner, admin, user, billing, workspaces or a number 0-255.")
    var role: String

    @Option(name: .long, help: "A workspace the user may see; repeat for several.")
    var workspace: [String] = []

    @Option(name: .long, help: "Lifetime such as 90s, 30m, 1h, 7d.")
    var ttl: String = "1h"

    func run() async throws {
        guard let parsedRole = OrganizationRole(parsing: role) else {
            throw ValidationError("role must be owner, admin, user, billing, workspaces or a number 0-255, not \(role)")
        }
        guard let lifetime = Self.parseDuration(ttl) else {
            throw ValidationError("ttl must look like 90s, 30m, 1h or 7d, not \(ttl)")
        }
        let source = try await SettingsSource(configFile: common.config)
        let secret: [UInt8]
        if let configured = source.value(Settings.jwtSecret, flag: common.jwtSecret) {
            secret = Array(configured.utf8)
        } else {
            secret = try JWTSecretFile.loadOrCreate(dataDirectory: source.value(Settings.dataDir, flag: common.dataDir))
        }
        let authority = try await TokenAuthority.make(keys: TokenKeys(hmacSecret: secret))
        let identity = CallerIdentity(organization: org, user: user, role: parsedRole, workspaces: workspace)
        print(try await authority.mint(for: identity, lifetime: lifetime))
    }

    /// Parses `90s`, `30m`, `1h`, `7d` or plain seconds.
    static func parseDuration(_ text: String) -> TimeInterval? {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let last = text.last, let unit = units[last], let value = Double(text.dropLast()), value > 0 {
            return value * unit
        }
        if let seconds = Double(text), seconds > 0 { return seconds }
        return nil
    }
}

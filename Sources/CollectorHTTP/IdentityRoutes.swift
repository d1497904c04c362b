import CollectorModel
import Hummingbird

/// `GET /whoami`: the caller as the token names it.
struct IdentityRoutes {
    struct WhoAmI: ResponseEncodable {
        let success = true
        let organization: String
        let user: String
        let role: Int
        let roleName: String
        let workspaces: [String]
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/whoami") { _, context -> WhoAmI in
            let identity = try context.requireIdentity()
            return WhoAmI(
                organization: identity.organization, user: identity.user,
                role: identity.role.rawValue, roleName: identity.role.description,
                workspaces: identity.workspaces)
        }
    }
}

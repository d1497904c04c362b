import FlashbackWire
import Foundation
import Hummingbird
import Logging
import Registry

/// `POST /secrets` (flashback-api.md Appendix A): the official installer's signed request for the
/// node's `.env` files, answered before the node registers.
///
/// The signature is checked as for `/register` (same keys, window and replay guard, with its own
/// replay purpose). Each configured service's file comes back as `env_<svc>_enc`, sealed to the
/// public key that verified the signature (``SealedEnvironment``), or as plain Base64 `env_<svc>`
/// only when the operator turned sealing off. Contents are never logged.
struct SecretsRoutes {
    let registry: NodeRegistry
    /// `nil` when the operator configured no env directory (`--node-env-dir`).
    let environment: NodeEnvironmentSource?
    /// `--node-env-plaintext`: answer `env_<svc>` in Base64 instead of sealing.
    let plaintext: Bool

    /// The answer: `success` and one entry per service.
    struct SecretsResponse: Encodable, Sendable {
        var entries: [(name: String, value: String)]

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            try container.encode(true, forKey: Key(stringValue: "success"))
            for entry in entries { try container.encode(entry.value, forKey: Key(stringValue: entry.name)) }
        }
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.post("/secrets") { request, context -> Response in
            let body = try await JSONRequest.decode(SecretsRequest.self, from: request, context: context)
            try SignedMessageFields.check(ip: body.ip, region: body.region, signature: body.signature)
            guard let environment else {
                throw APIError(.notFound, "this collector serves no node environment: its operator has not set --node-env-dir")
            }
            let message = SignedNodeMessage(ip: body.ip, region: body.region, timestamp: body.timestamp, signature: body.signature,
                                            organization: body.organization)
            let keyID = try await registry.verify(message, purpose: .secrets)
            let organization = message.organization ?? ""
            let files = try environment.files(organization: organization, region: message.region)
            guard !files.isEmpty else {
                throw APIError(.notFound, "no env file is configured for organization \(organization.isEmpty ? "(public nodes)" : organization)")
            }
            var entries: [(name: String, value: String)] = []
            for file in files {
                if plaintext {
                    entries.append((name: "env_\(file.service)", value: Data(file.content).base64EncodedString()))
                } else {
                    guard let pem = registry.verifyingKeyPEM(keyID: keyID) else {
                        throw APIError(.conflict, "the key that verified the request was deleted meanwhile; retry")
                    }
                    let sealed = try SealedEnvironment.seal(file.content, publicKeyPEM: pem)
                    entries.append((name: "env_\(file.service)_enc", value: String(decoding: try JSONEncoder().encode(sealed), as: UTF8.self)))
                }
            }
            context.logger.info("node environment served", metadata: [
                "ip": "\(message.ip)", "organization": "\(organization.isEmpty ? "public" : organization)",
                "services": "\(files.map(\.service).joined(separator: ","))", "sealed": "\(!plaintext)",
            ])
            return try JSONResponse(body: SecretsResponse(entries: entries)).response(from: request, context: context)
        }
    }
}

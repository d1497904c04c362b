import Foundation

/// Key material kept as fixture files (generated once with `openssl genrsa -traditional 2048`).
enum TestKeys {
    static func fixture(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: name, withExtension: nil, subdirectory: "Fixtures"),
              let text = try? String(contentsOf: url, encoding: .utf8) else {
            preconditionFailure("missing test fixture \(name)")
        }
        return text
    }

    /// An RSA-2048 private key (PKCS#1 PEM) for RS256 tokens.
    static var rsaPrivatePEM: String { fixture("jwt-rs256-private.pem") }
}

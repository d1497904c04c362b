import CollectorModel
import Crypto
import Foundation

/// Remembers the signatures accepted inside the clock-skew window so that none is accepted twice.
///
/// A signature is remembered until its message's timestamp leaves the window (after that the
/// timestamp check rejects it anyway). Entries are also recorded in the ``RegistryStore`` so that
/// a restart does not reopen the window.
/// Not thread-safe: owned by ``NodeRegistry``'s state lock.
struct ReplayGuard {
    private var expiries: [Data: Date] = [:]
    private var insertsSincePrune = 0

    /// The fingerprint of a signature used for `purpose`: SHA-256 of its decoded bytes (after a
    /// purpose prefix, except for `.node`, whose records predate purposes), so that re-encoding
    /// the same signature differently (padding, line breaks) does not make it new.
    static func fingerprint(_ signature: [UInt8], purpose: SignaturePurpose = .node) -> Data {
        switch purpose {
        case .node: return Data(SHA256.hash(data: signature))
        case .secrets: return Data(SHA256.hash(data: Array("flashback-secrets\u{0}".utf8) + signature))
        }
    }

    func wasSeen(_ fingerprint: Data, now: Date) -> Bool {
        guard let expiry = expiries[fingerprint] else { return false }
        return expiry > now
    }

    mutating func remember(_ fingerprint: Data, until expiry: Date, now: Date) {
        expiries[fingerprint] = expiry
        insertsSincePrune += 1
        if insertsSincePrune >= 1024 {
            expiries = expiries.filter { $0.value > now }
            insertsSincePrune = 0
        }
    }

    /// Drops a reservation whose recording in the store failed, so a retry is not a replay.
    mutating func forget(_ fingerprint: Data) {
        expiries[fingerprint] = nil
    }

    var count: Int { expiries.count }
}

import CollectorModel
import Crypto
import Foundation

/// Remembers the signatures accepted inside the clock-skew window so that none is accepted twice.
///
/// A signature is remembered until its message's timestamp leaves the window (after that the
/// timestamp check rejects it anyway). Entries are persisted (`replay/<expiry u64 BE><sha256>`)
/// so that a restart does not reopen the window; expired ones are dropped in bulk.
/// Not thread-safe: owned by ``NodeRegistry``'s state lock.
struct ReplayGuard {
    private var expiries: [Data: Date] = [:]
    private var insertsSincePrune = 0

    static let keyPrefix = Array("replay/".utf8)

    /// The fingerprint of a signature: SHA-256 of its decoded bytes, so that re-encoding the same
    /// signature differently (padding, line breaks) does not make it new.
    static func fingerprint(_ signature: [UInt8]) -> Data {
        Data(SHA256.hash(data: signature))
    }

    static func storageKey(fingerprint: Data, expiry: Date) -> [UInt8] {
        keyPrefix + UInt64(max(0, Int64(saturating: expiry.timeIntervalSince1970))).bigEndianBytesForReplay + Array(fingerprint)
    }

    /// Parses a persisted entry; `nil` for a key of another shape.
    static func parse(storageKey key: [UInt8]) -> (fingerprint: Data, expiry: Date)? {
        guard key.count == keyPrefix.count + 8 + 32, key.starts(with: keyPrefix) else { return nil }
        let seconds = key[keyPrefix.count..<(keyPrefix.count + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (Data(key[(keyPrefix.count + 8)...]), Date(timeIntervalSince1970: TimeInterval(seconds)))
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

    var count: Int { expiries.count }
}

extension UInt64 {
    fileprivate var bigEndianBytesForReplay: [UInt8] { withUnsafeBytes(of: bigEndian) { Array($0) } }
}

import Foundation

/// The authentication header of a line-protocol datagram:
/// `#fb1 <nodeId> <unix-seconds> <base64 HMAC-SHA256(nodeToken, rest)>\n`, then the lines.
///
/// Pure parsing of untrusted bytes (fuzzed: `flashback-fuzz udp-header`); the HMAC and the time
/// window are checked by the UDP sink with the node's credential.
public struct DatagramHeader: Equatable, Sendable {
    public var nodeID: String
    /// As sent; any Int64 (the sink compares it with its clock without converting it to a time).
    public var seconds: Int64
    public var mac: [UInt8]
    /// Offset of the first body byte (just past the header's newline).
    public var bodyOffset: Int

    /// The longest header read; a longer first line is refused without being split.
    public static let maxLength = 512

    /// What the start of a datagram is.
    public enum Parsed: Equatable, Sendable {
        /// The datagram does not start with `#fb1 `.
        case absent
        case malformed(String)
        case header(DatagramHeader)
    }

    /// Reads the `#fb1` header line of a datagram, if it starts with one (at most ``maxLength`` bytes).
    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        guard bytes.count >= 5, bytes[0] == UInt8(ascii: "#"), bytes[1] == UInt8(ascii: "f"), bytes[2] == UInt8(ascii: "b"),
              bytes[3] == UInt8(ascii: "1"), bytes[4] == UInt8(ascii: " ") else { return .absent }
        guard let newline = bytes.prefix(maxLength + 1).firstIndex(of: UInt8(ascii: "\n")) else {
            return .malformed(bytes.count > maxLength ? "header longer than \(maxLength) bytes" : "header without a body")
        }
        let fields = bytes[0..<newline].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard fields.count == 4, !fields[1].isEmpty, let seconds = Int64(String(decoding: fields[2], as: UTF8.self)),
              let mac = Data(base64Encoded: String(decoding: fields[3], as: UTF8.self)), !mac.isEmpty else {
            return .malformed("header is not '#fb1 <nodeId> <unix-seconds> <base64 HMAC>'")
        }
        let nodeID = String(decoding: fields[1], as: UTF8.self)
        return .header(DatagramHeader(nodeID: nodeID, seconds: seconds, mac: Array(mac), bodyOffset: newline + 1))
    }
}

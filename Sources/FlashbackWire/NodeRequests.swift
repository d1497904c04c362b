import CollectorModel
import Foundation

// The bodies bridge nodes send (flashback-api.md §6, §7.4, §8.1) and the checks the routes apply
// before anything is stored. Pure: fuzzed by `flashback-fuzz register|status|stats-report`.

/// `POST /register` body (flashback-api.md §6.1).
public struct RegisterRequest: Decodable, Sendable {
    public var ip: String
    public var region: String
    public var timestamp: NodeTimestamp
    public var signature: String
    public var provider: String?
    public var status: String
    public var version: String
    public var id_org: String?
    /// What older installers send instead of `id_org`.
    public var org_id: String?

    /// The organization the signature claims (`id_org`, else `org_id`); `nil` for public nodes.
    public var organization: String? { id_org.nonEmpty ?? org_id.nonEmpty }
    public var nodeServices: Int?
    public var url: String?
}

/// `POST /secrets` body (Appendix A): the installer's signed request for the node's env files,
/// signed like `/register` (`ip|region|timestamp`).
public struct SecretsRequest: Decodable, Sendable {
    public var ip: String
    public var region: String
    public var timestamp: NodeTimestamp
    public var signature: String
    public var id_org: String?
    /// What older installers send instead of `id_org`.
    public var org_id: String?

    /// The organization the signature claims (`id_org`, else `org_id`); `nil` for public nodes.
    public var organization: String? { id_org.nonEmpty ?? org_id.nonEmpty }
}

/// `POST /unregister` body (§6.2); `region` may be absent (DESIGN.md §4.3).
public struct UnregisterRequest: Decodable, Sendable {
    public var ip: String
    public var region: String?
    public var timestamp: NodeTimestamp
    public var signature: String
    public var id_org: String?
    /// What older installers send instead of `id_org`.
    public var org_id: String?

    /// The organization the signature claims (`id_org`, else `org_id`); `nil` for public nodes.
    public var organization: String? { id_org.nonEmpty ?? org_id.nonEmpty }
}

/// The parts of a signed node message (`ip|region|timestamp`) the routes bound before the
/// signature is checked.
public enum SignedMessageFields {
    /// Bounds the signed fields of a node message: the IP, the region and the Base64 signature.
    public static func check(ip: String, region: String, signature: String) throws(RequestError) {
        guard !ip.isEmpty, ip.utf8.count <= 64, !ip.contains("|") else {
            throw RequestError("ip must be a non-empty address of at most 64 characters without '|'")
        }
        guard !region.isEmpty, region.utf8.count <= 64 else {
            throw RequestError("region must be a non-empty string of at most 64 characters")
        }
        guard !signature.isEmpty, signature.utf8.count <= 4096 else {
            throw RequestError("signature must be a non-empty Base64 string")
        }
    }
}

/// `NodeStatusRequest` (`POST /status`, alias `POST /node/status`; §7.4).
public struct StatusRequest: Decodable, Sendable {
    /// Most bucket entries one report may carry.
    public static let maxBuckets = 10_000

    public var ip: String
    public var region: String
    public var timestamp: NodeTimestamp
    public var signature: String
    public var id_org: String?
    /// What older installers send instead of `id_org`.
    public var org_id: String?

    /// The organization the signature claims (`id_org`, else `org_id`); `nil` for public nodes.
    public var organization: String? { id_org.nonEmpty ?? org_id.nonEmpty }
    public var buckets: [BucketStatus]

    /// One bucket's entry of a status report.
    public struct BucketStatus: Decodable, Sendable {
        public var unitId: String?
        public var bucketId: String?
        public var status: String
        public var latencyMs: Double?
        public var latency_ms: Double?
        public var createdAt: String?

        /// A reported latency that can be stored: finite and not negative.
        public var latency: Double? {
            guard let latency = latencyMs ?? latency_ms, latency.isFinite, latency >= 0 else { return nil }
            return latency
        }

        /// The entry as it is stored, or the refusal naming `buckets[index]`.
        public func checked(index: Int) throws(RequestError) -> Checked {
            guard let id = unitId.nonEmpty ?? bucketId.nonEmpty else {
                throw RequestError("buckets[\(index)] needs unitId")
            }
            guard let value = NodeStatusValue.value(of: status) else {
                throw RequestError("buckets[\(index)].status must be ONLINE, OFFLINE or DISCONNECTED")
            }
            var time: UnixTime?
            if let text = createdAt, !text.isEmpty {
                guard let parsed = ISO8601.parse(text), !parsed.dateOnly, let bounded = UnixTime(seconds: parsed.seconds) else {
                    throw RequestError("buckets[\(index)].createdAt must be an ISO-8601 date-time \(UnixTime.rangeDescription)")
                }
                time = bounded
            }
            return Checked(bucket: id, status: value, latency: latency, time: time)
        }

        /// The entry as it is stored.
        public struct Checked: Equatable, Sendable {
            public var bucket: String
            /// ``NodeStatusValue`` of the status.
            public var status: Double
            public var latency: Double?
            /// `createdAt`, or `nil` for "now".
            public var time: UnixTime?
        }
    }

    /// Bounds the report as a whole (signed fields, number of entries).
    public func check() throws(RequestError) {
        try SignedMessageFields.check(ip: ip, region: region, signature: signature)
        guard buckets.count <= Self.maxBuckets else { throw RequestError("at most \(Self.maxBuckets) buckets per report") }
    }
}

/// One `StatsData` record of `POST /stats/report` (§8.1).
public struct TrafficRecord: Decodable, Sendable {
    /// Most records one report may carry.
    public static let maxRecords = 100_000
    /// The numeric fields, in the order they are stored.
    public static let fieldNames = FleetSchema.BucketTraffic.fields

    public var timestamp: Int64?
    public var repoId: String?
    public var unitId: String?
    public var bucketId: String?
    public var upl_bytes: Double?
    public var dwl_bytes: Double?
    public var size_change: Double?
    public var requests: Double?
    public var latency_ms: Double?
    public var host: String?

    /// The record as it is stored, or the refusal naming record `index`.
    public func checked(index: Int) throws(RequestError) -> Checked {
        guard let bucket = bucketId.nonEmpty ?? unitId.nonEmpty else { throw RequestError("record \(index) needs bucketId or unitId") }
        var tags: [(key: String, value: String)] = [(key: FleetSchema.Tag.bucket, value: bucket)]
        if let repo = repoId.nonEmpty { tags.append((key: FleetSchema.Tag.repo, value: repo)) }
        if let host = host.nonEmpty { tags.append((key: FleetSchema.Tag.host, value: host)) }
        let values = [upl_bytes, dwl_bytes, size_change, requests, latency_ms]
        var fields: [(name: String, value: Double)] = []
        for (name, value) in zip(Self.fieldNames, values) {
            if let value, value.isFinite { fields.append((name: name, value: value)) }
        }
        guard !fields.isEmpty else { throw RequestError("record \(index) has no numeric field") }
        var time: UnixTime?
        if let seconds = timestamp {
            guard let bounded = UnixTime(seconds: seconds) else {
                throw RequestError("[\(index)].timestamp must be Unix seconds \(UnixTime.rangeDescription)")
            }
            time = bounded
        }
        return Checked(tags: tags, fields: fields, time: time)
    }

    /// The record as it is stored.
    public struct Checked: Sendable {
        /// `bucket`, then `repo` and `host` when present (not yet sorted; the node tag may join).
        public var tags: [(key: String, value: String)]
        public var fields: [(name: String, value: Double)]
        /// `timestamp`, or `nil` for "now".
        public var time: UnixTime?
    }
}

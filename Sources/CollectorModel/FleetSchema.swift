/// The fleet's series, named once: what bridge nodes report (`POST /status`, `POST /stats/report`,
/// line protocol with these names) and what the stats API and `/metrics` read back.
///
/// The store below knows none of these names: it keeps any measurement with any tags. Every
/// layer that gives a sample a fleet meaning (node reports, the node tag rule, stats, the
/// remote-write naming) reads them from here.
public enum FleetSchema {
    /// Tag keys with a meaning to the collector.
    public enum Tag {
        /// The writing node's id: added to every line a node token writes, and a line naming
        /// another node is refused.
        public static let node = "node"
        /// The bucket (`unitId`/`bucketId` of the API).
        public static let bucket = "bucket"
        /// The repository of a traffic record.
        public static let repo = "repo"
        /// The host a traffic record was served for.
        public static let host = "host"
    }

    /// `node_status`: one series per (node, bucket), one sample per status report.
    public enum NodeStatus {
        public static let measurement = "node_status"
        /// The reported status as ``NodeStatusValue`` stores it (1 ONLINE, 0 OFFLINE, -1 DISCONNECTED).
        public static let status = "status"
        /// Milliseconds the node took to reach the bucket.
        public static let latency = "latency_ms"
    }

    /// `bucket_traffic`: one series per (bucket, repo, host, node), one sample per report record.
    public enum BucketTraffic {
        public static let measurement = "bucket_traffic"
        /// Bytes uploaded (a counter: the stats add it up).
        public static let uploadedBytes = "upl_bytes"
        /// Bytes downloaded (a counter).
        public static let downloadedBytes = "dwl_bytes"
        /// Net change of the stored size in bytes (a counter; may be negative).
        public static let sizeChange = "size_change"
        /// Requests served (a counter).
        public static let requests = "requests"
        /// Request latency in milliseconds (a gauge).
        public static let latency = "latency_ms"
        /// Every field, in the order a report record stores them.
        public static let fields = [uploadedBytes, downloadedBytes, sizeChange, requests, latency]
        /// The fields that count something and are summed (the `/metrics` traffic totals).
        public static let counters = [uploadedBytes, downloadedBytes, sizeChange, requests]
    }
}

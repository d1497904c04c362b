import Catalog
import CollectorModel
import Exposition
import Foundation
import Registry
import Synchronization
import TimeSeries

/// The export's node×bucket pairs in label order with their rendered label sets, and the
/// signature (nodes, organizations and their series counts) they were built for.
/// The export's buckets (organization, bucket) in label order with their labels, and the slot
/// each traffic series adds to; kept for the signature (traffic series per organization).
struct ExportBuckets: Sendable {
    var signature: Int
    var series: [UInt64]
    var slots: [Int]
    var labels: [[MetricSample.Label]]
}

struct ExportPairs: Sendable {
    var signature: Int
    /// Each pair's status series.
    var series: [UInt64]
    var labelSets: [[UInt8]]
}

extension FleetStats {
    /// The domain families of `/metrics`, over every organization, labelled only by registered
    /// ids: node id, bucket id (as the catalog or a registered node's reports name it),
    /// organization and region.
    ///
    /// - `flashback_nodes`, `flashback_buckets`: per organization (public nodes: no label).
    /// - `flashback_node_up`, `flashback_node_last_seen_timestamp_seconds`: per node.
    /// - `flashback_node_bucket_status` (1 ONLINE, 0 OFFLINE, -1 DISCONNECTED, after the
    ///   liveness silences), `flashback_node_bucket_up`, `flashback_node_bucket_latency_seconds`
    ///   (the latest report's), `flashback_node_bucket_last_report_timestamp_seconds`.
    /// - `flashback_bucket_upload_bytes_total`, `…_download_bytes_total`, `…_requests_total`
    ///   (counters since the collector started) and `flashback_bucket_size_change_bytes`.
    public func metricFamilies(now: Date) async throws -> [MetricFamily] {
        typealias Label = MetricSample.Label
        var families: [MetricFamily] = []
        // Nodes.
        let nodes = registry.allNodes()
        var perOrganization: [String: Int] = [:]
        var up: [([Label], Double)] = []
        var seen: [([Label], Double)] = []
        for node in nodes {
            perOrganization[node.organization ?? "", default: 0] += 1
            let labels = [Label("node", node.id), Label("organization", node.organization ?? ""), Label("region", node.region)]
            up.append((labels, settings.liveness.liveness(lastSeen: node.lastSeen, now: now) == .online ? 1 : 0))
            seen.append((labels, node.lastSeen.timeIntervalSince1970))
        }
        families.append(.gauge("flashback_nodes", "Registered bridge nodes per organization (public nodes without the label).",
                               perOrganization.sorted { $0.key < $1.key }.map { ([Label("organization", $0.key)], Double($0.value)) }))
        families.append(.gauge("flashback_buckets", "Buckets in the catalog per organization.",
                               catalog.bucketCounts().sorted { $0.key < $1.key }.map { ([Label("organization", $0.key)], Double($0.value)) }))
        families.append(.gauge("flashback_node_up", "1 when the node was heard from within --node-offline-after, else 0.", up))
        families.append(.gauge("flashback_node_last_seen_timestamp_seconds", "When the collector last heard from the node (Unix seconds).", seen))

        // Node × bucket: every organization's status series of registered nodes, in label order
        // (bucket, node, organization) with their label sets rendered; kept between scrapes while
        // no series or node appears or goes.
        var organizations = Set(try await store.organizations())
        organizations.insert("")
        var perOrganizationSeries: [(String, [StatsSeries])] = []
        for organization in organizations.sorted() {
            perOrganizationSeries.append((organization, try await series(Self.statusMeasurement, CatalogScope(organization: organization, workspaces: [])).own))
        }
        var hasher = Hasher()
        for node in nodes { hasher.combine(node.id) }
        for (organization, list) in perOrganizationSeries {
            hasher.combine(organization)
            hasher.combine(list.count)
        }
        let signature = hasher.finalize()
        let order: ExportPairs
        if let cached = exportPairs.withLock({ $0 }), cached.signature == signature {
            order = cached
        } else {
            var pairs: [(pair: StatusPair, organization: String)] = []
            let byID = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            for (organization, list) in perOrganizationSeries {
                for series in list {
                    guard let id = series.node, let node = byID[id] else { continue }
                    pairs.append((StatusPair(node: node, bucket: series.bucket, series: series.id), organization))
                }
            }
            // One string comparison per step (label values joined by a byte that sorts first).
            let keys = pairs.map { $0.pair.bucket + "\u{1}" + $0.pair.node.id + "\u{1}" + $0.organization }
            pairs = keys.indices.sorted { keys[$0] < keys[$1] }.map { pairs[$0] }
            order = ExportPairs(signature: signature, series: pairs.map(\.pair.series),
                                labelSets: pairs.map { LineWriter.labelSet([("bucket", $0.pair.bucket), ("node", $0.pair.node.id), ("organization", $0.organization)]) })
            exportPairs.withLock { $0 = order }
        }
        let states = try await latestStates(series: order.series, now: now)
        // Four families over every pair: each pair's label set is rendered once.
        let count = order.series.count
        var status = LineWriter(name: "flashback_node_bucket_status", capacity: count * 140)
        var pairUp = LineWriter(name: "flashback_node_bucket_up", capacity: count * 140)
        var latency = LineWriter(name: "flashback_node_bucket_latency_seconds", capacity: count * 150)
        var reported = LineWriter(name: "flashback_node_bucket_last_report_timestamp_seconds", capacity: count * 160)
        for (state, labels) in zip(states, order.labelSets) {
            guard let reportNanos = state.reportNanos else { continue }
            switch state.status {
            case .online: status.append(labelSet: labels, value: 1)
            case .offline: status.append(labelSet: labels, value: 0)
            case .disconnected: status.append(labelSet: labels, value: -1)
            }
            pairUp.append(labelSet: labels, value: state.status == .online ? 1 : 0)
            if let milliseconds = state.latencyMs { latency.append(labelSet: labels, value: milliseconds / 1000) }
            reported.append(labelSet: labels, value: Self.seconds(nanos: reportNanos))
        }
        families.append(MetricFamily(name: "flashback_node_bucket_status", help: "Status of a node for a bucket: 1 ONLINE, 0 OFFLINE, -1 DISCONNECTED (a silent pair turns OFFLINE, then DISCONNECTED).",
                                     type: .gauge, rendered: status.bytes))
        families.append(MetricFamily(name: "flashback_node_bucket_up", help: "1 when the node serves the bucket ONLINE, else 0.", type: .gauge, rendered: pairUp.bytes))
        families.append(MetricFamily(name: "flashback_node_bucket_latency_seconds", help: "Latency of the node for the bucket in its latest status report.",
                                     type: .gauge, rendered: latency.bytes))
        families.append(MetricFamily(name: "flashback_node_bucket_last_report_timestamp_seconds", help: "Time of the latest status report of the node for the bucket (Unix seconds).",
                                     type: .gauge, rendered: reported.bytes))

        // Bucket traffic since start, summed per (organization, bucket): which bucket each
        // traffic series adds to is kept between scrapes while no traffic series appears.
        var trafficLists: [(String, [StatsSeries])] = []
        var trafficHasher = Hasher()
        for organization in organizations.sorted() {
            let list = try await series(Self.trafficMeasurement, CatalogScope(organization: organization, workspaces: [])).own
            trafficHasher.combine(organization)
            trafficHasher.combine(list.count)
            trafficLists.append((organization, list))
        }
        let trafficSignature = trafficHasher.finalize()
        let buckets: ExportBuckets
        if let cached = exportBuckets.withLock({ $0 }), cached.signature == trafficSignature {
            buckets = cached
        } else {
            struct BucketKey: Hashable { var organization: String; var bucket: String }
            var keys = Set<BucketKey>()
            for (organization, list) in trafficLists {
                for series in list { keys.insert(BucketKey(organization: organization, bucket: series.bucket)) }
            }
            let ordered = keys.sorted { ($0.bucket, $0.organization) < ($1.bucket, $1.organization) }
            let slotOf = Dictionary(uniqueKeysWithValues: ordered.enumerated().map { ($0.element, $0.offset) })
            var series: [UInt64] = []
            var slots: [Int] = []
            for (organization, list) in trafficLists {
                for one in list {
                    series.append(one.id)
                    slots.append(slotOf[BucketKey(organization: organization, bucket: one.bucket)] ?? 0)
                }
            }
            buckets = ExportBuckets(signature: trafficSignature, series: series, slots: slots,
                                    labels: ordered.map { [Label("bucket", $0.bucket), Label("organization", $0.organization)] })
            exportBuckets.withLock { $0 = buckets }
        }
        let totals = store.countedTotals()
        let fields = [FleetSchema.BucketTraffic.uploadedBytes, FleetSchema.BucketTraffic.downloadedBytes,
                      FleetSchema.BucketTraffic.requests, FleetSchema.BucketTraffic.sizeChange].map { store.fieldID($0) }
        var sums = [Double](repeating: 0, count: buckets.labels.count * 4)
        var hasTotals = [Bool](repeating: false, count: buckets.labels.count)
        for (id, slot) in zip(buckets.series, buckets.slots) {
            guard let values = totals[id] else { continue }
            hasTotals[slot] = true
            for (index, field) in fields.enumerated() {
                if let field, let value = values[field] { sums[slot * 4 + index] += value }
            }
        }
        func traffic(_ index: Int) -> [([Label], Double)] {
            buckets.labels.indices.compactMap { slot in hasTotals[slot] ? (buckets.labels[slot], sums[slot * 4 + index]) : nil }
        }
        families.append(.counter("flashback_bucket_upload_bytes_total", "Bytes uploaded to the bucket as reported by its nodes since the collector started.", traffic(0)))
        families.append(.counter("flashback_bucket_download_bytes_total", "Bytes downloaded from the bucket as reported by its nodes since the collector started.", traffic(1)))
        families.append(.counter("flashback_bucket_requests_total", "Requests to the bucket as reported by its nodes since the collector started.", traffic(2)))
        families.append(.gauge("flashback_bucket_size_change_bytes", "Net change of the bucket's stored size reported since the collector started (may be negative).", traffic(3)))
        return families
    }
}

extension TimeSeriesSettings {
    /// Store settings with the fleet's traffic counters (``FleetSchema/BucketTraffic/counters``
    /// of `bucket_traffic`) summed per series for the `/metrics` traffic families: the store
    /// itself knows no measurement names, the wiring tells it these.
    public static var fleet: TimeSeriesSettings {
        var settings = TimeSeriesSettings()
        settings.countedFields = FleetSchema.BucketTraffic.counters
        settings.countedMeasurements = [FleetSchema.BucketTraffic.measurement]
        return settings
    }
}

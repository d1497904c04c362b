import Ingest
import Registry
import TimeSeries

/// Turns parsed lines into series points for one writer; shared by HTTP and UDP ingest.
///
/// Rules: a node's lines carry its `node` tag (added when absent; a line naming another node is
/// refused), string fields are not stored, and a line without a timestamp gets `nowNanos`.
enum SeriesPointMapping {
    static func map(
        _ parsed: [LinePoint], organization: String, node: BridgeNode?, nowNanos: Int64
    ) -> (points: [SeriesPoint], errors: [LineError]) {
        var points: [SeriesPoint] = []
        points.reserveCapacity(parsed.count)
        var errors: [LineError] = []
        // The memo context: the same series section maps to the same series only for the same
        // organization and node (a node's lines get its node tag).
        let context = organization + "\u{0}" + (node?.id ?? "")
        for point in parsed {
            if let node, let claimed = point.tag("node"), claimed != node.id {
                errors.append(LineError(line: point.line, reason: .invalidTag, detail: "node tag \(claimed) is not the writing node"))
                continue
            }
            let fields = point.fields.compactMap { field in field.value.numericValue.map { (name: field.key, value: $0) } }
            guard !fields.isEmpty else {
                errors.append(LineError(line: point.line, reason: .invalidFieldValue, detail: "no numeric field (string fields are not stored)"))
                continue
            }
            if let memo = point.memo, let id = memo.id(for: context) {
                var known = SeriesPoint(organization: organization, measurement: point.measurement, tags: [], fields: fields, timestamp: point.timestamp ?? nowNanos)
                known.seriesID = id
                points.append(known)
                continue
            }
            var tags = point.tags.map { (key: $0.key, value: $0.value) }
            if let node, point.tag("node") == nil {
                tags.append((key: "node", value: node.id))
                tags.sort { $0.key < $1.key }
            }
            var mapped = SeriesPoint(organization: organization, measurement: point.measurement, tags: tags, fields: fields, timestamp: point.timestamp ?? nowNanos)
            mapped.memo = point.memo.map { ($0, context) }
            points.append(mapped)
        }
        return (points, errors)
    }
}

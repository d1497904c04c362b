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
        for point in parsed {
            var tags = point.tags.map { (key: $0.key, value: $0.value) }
            if let node {
                if let claimed = point.tag("node") {
                    guard claimed == node.id else {
                        errors.append(LineError(line: point.line, reason: .invalidTag, detail: "node tag \(claimed) is not the writing node"))
                        continue
                    }
                } else {
                    tags.append((key: "node", value: node.id))
                    tags.sort { $0.key < $1.key }
                }
            }
            let fields = point.fields.compactMap { field in field.value.numericValue.map { (name: field.key, value: $0) } }
            guard !fields.isEmpty else {
                errors.append(LineError(line: point.line, reason: .invalidFieldValue, detail: "no numeric field (string fields are not stored)"))
                continue
            }
            points.append(SeriesPoint(organization: organization, measurement: point.measurement, tags: tags, fields: fields, timestamp: point.timestamp ?? nowNanos))
        }
        return (points, errors)
    }
}

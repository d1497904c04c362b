import CollectorModel
import FlashbackWire
import Foundation
import Ingest
import IngestMapping
import TimeSeries

/// The fuzz targets: one function per decoder of untrusted bytes. Each runs the decoder and the
/// checks the service applies next, and stops the process (`fatalError`) when an invariant fails,
/// so libFuzzer reports it like a trap (docs/fuzzing.md).
///
/// The same functions replay the committed corpus in the unit tests, so every input that once
/// crashed stays a regression test.
public enum FuzzTargets {
    public typealias Target = @Sendable (UnsafeRawBufferPointer) -> Void

    /// Every target by the name `scripts/fuzz.sh` and the corpus folders use.
    public static let all: [String: Target] = [
        "line-protocol": lineProtocol,
        "udp-header": udpHeader,
        "register": register,
        "status": status,
        "stats-report": statsReport,
        "bucket": bucket,
        "repo": repo,
        "repo-key": repoKey,
        "authorize": authorize,
        "sigv4": sigV4,
        "stats-dates": statsDates,
        "sample-block": sampleBlock,
    ]

    static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
        if !condition() { fatalError("invariant failed: \(message())") }
    }

    // MARK: Line protocol (HTTP /write, UDP)

    /// The first byte picks the precision; the rest is a body. Parsed rows then go through the
    /// mapping to series points (timestamp scaling, tag and field checks) as on `/write`.
    /// Maps parsed lines as the ingest writer does (node tag rule, numeric fields only).
    static let memo = SeriesMemo(capacity: 1)
    /// Shared by every input, so sections and orders of earlier inputs meet later ones.
    static let sections = SeriesSectionCache(capacity: 64)

    static func lineProtocol(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let precisions = TimestampPrecision.allCases
        let precision = precisions[Int(first) % precisions.count]
        let body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        let parser = LineProtocolParser(precision: precision, maxLineLength: 4096, maxTags: 16, seriesCache: nil)
        let parsed = parser.parse(body)
        check(parsed.rows.count == parsed.sections.count, "one section per row")
        check(parsed.rows.count + Set(parsed.errors.map(\.line)).count <= parsed.lines, "each data line is a row or refused")
        var previousLine = 0
        for row in parsed.rows {
            check(row.fieldStart < row.fieldEnd, "a row has a field")
            check(row.fieldEnd <= Int32(parsed.fields.count), "field range inside the fields")
            check(row.line > previousLine, "rows in line order")
            previousLine = row.line
        }
        for field in parsed.fields { check(Int(field.key) < parsed.fieldKeys.count, "field key in the dictionary") }
        for error in parsed.errors { check(error.line >= 1, "error line numbers start at 1") }
        // The section cache and the sender's order change no result (compared as text: a NaN
        // field is not equal to itself). Twice: the second parse follows the first one's order.
        for _ in 0..<2 {
            let followed = LineProtocolParser(precision: precision, maxLineLength: 4096, maxTags: 16, seriesCache: sections,
                                              followsSenderOrder: true).parse(body)
            check("\(followed.points)" == "\(parsed.points)" && followed.errors == parsed.errors, "the cache and the sender's order change nothing")
        }
        let mapped = memo.batch(parsed, organization: "fuzz", node: "n1", nowNanos: 1_700_000_000_000_000_000)
        let (batch, errors) = (mapped.batch, mapped.errors)
        check(batch.points.count + errors.count == parsed.rows.count, "every row is a point or an error")
        for point in batch.points {
            check(point.fieldStart < point.fieldEnd && Int(point.fieldEnd) <= batch.fields.count, "point fields inside the batch")
        }
        check(batch.fields.allSatisfy { $0.value.isFinite }, "only finite values are stored")
    }

    // MARK: UDP header

    static func udpHeader(_ bytes: UnsafeRawBufferPointer) {
        switch DatagramHeader.parse(bytes) {
        case .absent:
            check(!bytes.starts(with: Array("#fb1 ".utf8)), "a #fb1 datagram is never 'absent'")
        case .malformed(let reason):
            check(!reason.isEmpty, "a refusal has a reason")
        case .header(let header):
            check(header.bodyOffset <= bytes.count && header.bodyOffset <= DatagramHeader.maxLength + 1, "body offset inside the datagram")
            check(bytes[header.bodyOffset - 1] == UInt8(ascii: "\n"), "the header ends at a newline")
            check(!header.mac.isEmpty && !header.nodeID.isEmpty, "node id and MAC present")
        }
    }

    // MARK: JSON bodies

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer) -> T? {
        try? JSONDecoder().decode(T.self, from: Data(bytes))
    }

    static func register(_ bytes: UnsafeRawBufferPointer) {
        if let body = decode(RegisterRequest.self, bytes) {
            try? SignedMessageFields.check(ip: body.ip, region: body.region, signature: body.signature)
            check(body.timestamp.date.timeIntervalSince1970.isFinite, "a timestamp is a finite instant")
        }
        if let body = decode(UnregisterRequest.self, bytes) {
            try? SignedMessageFields.check(ip: body.ip, region: body.region ?? "-", signature: body.signature)
        }
    }

    static func status(_ bytes: UnsafeRawBufferPointer) {
        guard let body = decode(StatusRequest.self, bytes) else { return }
        guard (try? body.check()) != nil else { return }
        for (index, bucket) in body.buckets.enumerated() {
            guard let entry = try? bucket.checked(index: index) else { continue }
            check([1.0, 0.0, -1.0].contains(entry.status), "status is 1, 0 or -1")
            if let latency = entry.latency { check(latency.isFinite && latency >= 0, "latency finite, not negative") }
            if let time = entry.time { check(time.nanoseconds / 1_000_000_000 == time.seconds, "nanoseconds exact") }
        }
    }

    static func statsReport(_ bytes: UnsafeRawBufferPointer) {
        guard let records = decode([TrafficRecord].self, bytes) else { return }
        for (index, record) in records.prefix(TrafficRecord.maxRecords).enumerated() {
            guard let entry = try? record.checked(index: index) else { continue }
            check(!entry.fields.isEmpty && entry.fields.allSatisfy { $0.value.isFinite }, "finite fields")
            if let time = entry.time { check(time.nanoseconds >= 0, "time after 1970") }
        }
    }

    static func bucket(_ bytes: UnsafeRawBufferPointer) {
        if let body = decode(BucketRequest.self, bytes) {
            for (field, value) in [("name", body.name), ("bucket", body.bucket), ("key", body.key), ("secret", body.secret),
                                   ("endpoint", body.endpoint), ("region", body.region), ("workspaceId", body.workspaceId),
                                   ("walletAddress", body.walletAddress), ("projectId", body.projectId)] {
                try? CatalogFieldLimits.check(field, value)
            }
            _ = body.name.nonEmpty
        }
        if let body = decode(ValidateRequest.self, bytes) {
            try? CatalogFieldLimits.check("endpoint", body.endpoint)
            if let endpoint = body.endpoint { _ = URL(string: endpoint)?.host }
        }
    }

    static func repo(_ bytes: UnsafeRawBufferPointer) {
        guard let body = decode(RepoRequest.self, bytes) else { return }
        for entry in (body.repoBuckets ?? []) + (body.repoUnits ?? []) {
            _ = entry.bucketId.nonEmpty ?? entry.unitId.nonEmpty ?? entry.bucket?.reference ?? entry.unit?.reference
            try? CatalogFieldLimits.check("folder", entry.folder)
        }
    }

    static func repoKey(_ bytes: UnsafeRawBufferPointer) {
        guard let body = decode(APIKeyRequest.self, bytes) else { return }
        _ = body.name.trimmingCharacters(in: .whitespaces).isEmpty
        _ = body.accessType.uppercased()
    }

    static func authorize(_ bytes: UnsafeRawBufferPointer) {
        guard let body = decode(AuthorizeRequest.self, bytes), (try? body.check()) != nil else { return }
        let request = body.signedRequest
        if let header = request.values(of: "authorization").first, let authorization = SigV4.Authorization(header: header) {
            _ = SigV4.canonicalRequest(request, signedHeaders: authorization.signedHeaders, payloadHash: "UNSIGNED-PAYLOAD")
        }
    }

    // MARK: SigV4

    /// Line 1: an `Authorization` value; line 2: a path; line 3: a query; line 4: an `x-amz-date`.
    static func sigV4(_ bytes: UnsafeRawBufferPointer) {
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        let part = { (index: Int) in index < lines.count ? lines[index] : "" }
        if let authorization = SigV4.Authorization(header: part(0)) {
            check(authorization.signature.utf8.count == 64 && authorization.signedHeaders.contains("host"), "a parsed header is complete")
            check(authorization.scope.hasSuffix("/aws4_request"), "scope ends in aws4_request")
        }
        let request = SigV4.Request(method: "GET", path: part(1), query: part(2), headers: [(name: "host", value: "h"), (name: "x-amz-date", value: part(3))])
        let canonical = SigV4.canonicalRequest(request, signedHeaders: ["host", "x-amz-date"], payloadHash: "UNSIGNED-PAYLOAD")
        check(canonical.hasSuffix("UNSIGNED-PAYLOAD"), "canonical request ends with the payload hash")
        let path = part(1)
        check(SigV4.percentDecode(SigV4.uriEncode(path, keepSlash: true)) == path, "percent-decoding undoes URI-encoding")
        if let presigned = SigV4.PresignedQuery(query: part(2)) {
            check((1...SigV4.PresignedQuery.maxExpires).contains(presigned.expires), "a presigned URL's validity is bounded")
            check(presigned.authorization.signature.utf8.count == 64 && presigned.authorization.signedHeaders.contains("host"),
                  "a parsed query signature is complete")
            check(!presigned.signedQuery.contains("X-Amz-Signature="), "the signed query leaves the signature out")
        }
        if let seconds = ISO8601.parseBasic(part(3)), UnixTime(seconds: seconds) != nil {
            let date = Date(timeIntervalSince1970: TimeInterval(seconds))
            check(ISO8601.parseBasic(SigV4.amzDateFormat(date)) == seconds, "a parsed amz date formats and parses back to itself")
        }
    }

    // MARK: Stats dates

    static func statsDates(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let parsed = StatsDates.parseISO(text) {
            check(UnixTime(seconds: parsed.time.seconds) != nil, "parsed time within range")
            let formatted = StatsDates.format(milliseconds: parsed.time.seconds * 1000)
            check(StatsDates.parseISO(formatted)?.time.seconds == parsed.time.seconds, "format(parse(x)) parses back to the same instant")
            if parsed.dateOnly { check(parsed.time.seconds % 86_400 == 0, "a date alone is midnight UTC") }
        }
        if let day = StatsDates.parseDDMMYYYY(text) {
            check(UnixTime(day: day) != nil, "a ddmmyyyy day within range")
        }
        if let parsed = ISO8601.parse(bytes: bytes) {
            check(parsed.seconds == ISO8601.parse(text)?.seconds, "bytes and text parse alike")
        }
        if let timestamp = NodeTimestamp(string: text) {
            check(timestamp.signedText == text, "signed text kept verbatim")
        }
        var out: [UInt8] = []
        if bytes.count >= 8 {
            StatsDates.append(milliseconds: bytes.loadUnaligned(as: Int64.self), to: &out)
            check(out.count == 24, "a formatted time is 24 bytes")
        }
    }

    // MARK: Sample blocks

    /// Arbitrary bytes must decode or be refused; what decodes must re-encode to itself. The
    /// bytes, read as 18-byte samples, must survive encode → decode exactly (bit patterns).
    static func sampleBlock(_ bytes: UnsafeRawBufferPointer) {
        if let block = SampleBlock(decoding: bytes) {
            let again = SampleBlock(decoding: block.encoded())
            check(again.map { same($0.samples, block.samples) } ?? false, "decode(encode(decode(x))) == decode(x)")
        }
        var samples: [FieldSample] = []
        var offset = 0
        while offset + 18 <= bytes.count {
            samples.append(FieldSample(
                field: UInt16(bytes[offset]) % 4,
                timestamp: bytes.loadUnaligned(fromByteOffset: offset + 2, as: Int64.self),
                value: Double(bitPattern: bytes.loadUnaligned(fromByteOffset: offset + 10, as: UInt64.self))))
            offset += 18
        }
        let block = SampleBlock(samples: samples)
        let decoded = SampleBlock(decoding: block.encoded())
        check(decoded.map { same($0.samples, block.samples) } ?? false, "decode(encode(x)) == x for \(block.samples.count) samples")
        let varints = SampleBlock(decoding: block.encodedVarint())
        check(varints.map { same($0.samples, block.samples) } ?? false, "version 3 round trip")
        let fixed = SampleBlock(decoding: block.encodedFixedWidth())
        check(fixed.map { same($0.samples, block.samples) } ?? false, "fixed-width round trip")
    }

    static func same(_ a: [FieldSample], _ b: [FieldSample]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.field == $1.field && $0.timestamp == $1.timestamp && $0.value.bitPattern == $1.value.bitPattern }
    }
}

import Ingest

/// Limits on line protocol, the same for HTTP and UDP (so that both can share one
/// ``SeriesMemo``): `--max-line-length` and `--max-tags-per-series`.
public struct LineLimits: Sendable {
    /// Longest accepted line in bytes.
    public var maxLineLength = LineProtocolParser.defaultMaxLineLength
    /// Most tags on one line.
    public var maxTagsPerSeries = LineProtocolParser.defaultMaxTags

    /// A `LineLimits` from its parts.
    public init(maxLineLength: Int = LineProtocolParser.defaultMaxLineLength, maxTagsPerSeries: Int = LineProtocolParser.defaultMaxTags) {
        self.maxLineLength = maxLineLength
        self.maxTagsPerSeries = maxTagsPerSeries
    }
}

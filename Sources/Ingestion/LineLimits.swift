/// Limits on line protocol, the same for HTTP and UDP (so that both can share one
/// ``SeriesMemo``): `--max-line-length` and `--max-tags-per-series`.
public struct LineLimits: Sendable {
    /// Longest accepted line in bytes.
    public var maxLineLength = 64 * 1024
    /// Most tags on one line.
    public var maxTagsPerSeries = 64

    public init(maxLineLength: Int = 64 * 1024, maxTagsPerSeries: Int = 64) {
        self.maxLineLength = maxLineLength
        self.maxTagsPerSeries = maxTagsPerSeries
    }
}

import CompressNIO
import NIOCore

/// The stream layer of the ingest path: admission by bytes in flight, content decoding (gzip)
/// and the size limit, before any byte is parsed.
public struct IngestStream: Sendable {
    public let admission: IngestAdmission
    public let metrics: IngestMetrics

    /// A `IngestStream` from its parts.
    public init(admission: IngestAdmission, metrics: IngestMetrics) {
        self.admission = admission
        self.metrics = metrics
    }

    /// Runs `body` with `weight` bytes reserved in the admission budget, or refuses with
    /// ``IngestError/saturated(_:)`` (counted as throttled) when the budget is exhausted.
    public func admitted<T>(weight: Int, protocol proto: IngestProtocol, _ body: () async throws -> T) async throws -> T {
        guard admission.tryAcquire(weight) else {
            metrics.recordThrottled(proto)
            throw IngestError.saturated("\(admission.limit) bytes in flight")
        }
        defer { admission.release(weight) }
        return try await body()
    }

    /// The content codings the ingest path accepts.
    public enum ContentEncoding: Sendable {
        case identity
        case gzip

        /// The coding a `Content-Encoding` header names (absent: identity), or
        /// ``IngestError/unsupportedEncoding(_:)``; checked before the body is read.
        public init(header: String?) throws(IngestError) {
            switch header?.lowercased() ?? "identity" {
            case "identity": self = .identity
            case "gzip": self = .gzip
            case let other: throw .unsupportedEncoding(other)
            }
        }
    }

    /// `body` decoded, at most `limit` bytes after decompression, so that a small bomb cannot
    /// inflate past it.
    public static func decode(_ body: ByteBuffer, _ encoding: ContentEncoding, limit: Int) throws(IngestError) -> ByteBuffer {
        switch encoding {
        case .identity:
            return body
        case .gzip:
            var compressed = body
            do {
                return try compressed.decompress(with: .gzip(), maxSize: limit)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                throw .tooLarge(limit: limit)
            } catch {
                throw .invalid("request body is not valid gzip")
            }
        }
    }
}

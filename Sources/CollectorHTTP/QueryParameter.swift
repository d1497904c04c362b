import CollectorModel
import FlashbackWire
import Foundation
import Hummingbird

/// Query parameters parsed at the edge into bounded values (DESIGN.md §5): a value outside its
/// range answers 400 naming the parameter, so nothing below a route sees an unbounded number.
enum QueryParameter {
    /// Unix seconds within ``UnixTime``'s range; `nil` when absent (`''`, `undefined`, `null`).
    static func unixTime(_ request: Request, _ name: String) throws -> UnixTime? {
        guard let text = request.uri.queryParameters.get(name).nonEmpty else { return nil }
        guard let seconds = Int64(text), let time = UnixTime(seconds: seconds) else {
            throw APIError(.badRequest, "\(name) must be Unix seconds \(UnixTime.rangeDescription)")
        }
        return time
    }

    /// A decimal integer within `range`; `nil` when absent.
    static func integer(_ request: Request, _ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = request.uri.queryParameters.get(name).nonEmpty else { return nil }
        guard let value = Int(text), range.contains(value) else {
            throw APIError(.badRequest, "\(name) must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

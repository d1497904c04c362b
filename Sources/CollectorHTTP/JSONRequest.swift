import Foundation
import Hummingbird
import NIOCore

/// Decodes JSON request bodies with errors that name the offending field.
enum JSONRequest {
    /// Reads the whole body (up to the context's limit) and decodes it as `T`.
    /// - Throws: ``APIError`` 400 naming the missing or mistyped field, or saying the body is not JSON.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let buffer = try await body(of: request, context: context)
        guard buffer.readableBytes > 0 else { throw APIError(.badRequest, "request body is empty; a JSON object is required") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw APIError(.badRequest, describe(error))
        }
    }

    /// The whole body, up to the context's limit: 413 beyond it, 400 when the body cannot be
    /// read (it ended before its `Content-Length`, or its chunked framing is broken).
    static func body(of request: Request, context: some RequestContext) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: context.maxUploadSize)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "request body is larger than \(context.maxUploadSize) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw APIError(.contentTooLarge, "request body is larger than \(context.maxUploadSize) bytes")
        } catch {
            throw APIError(.badRequest, "request body could not be read: it ended before its Content-Length or its framing is broken")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            return "missing field \(parent.isEmpty ? "" : parent + ".")\(key.stringValue)"
        case .typeMismatch(let type, let context):
            return "field \(path(context.codingPath)) has the wrong type (expected \(typeName(type)))"
        case .valueNotFound(_, let context):
            return "field \(path(context.codingPath)) must not be null"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "request body is not valid JSON" }
            return "field \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "request body could not be decoded"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Double.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }
}

/// A JSON response body with a chosen status, encoded with the context's encoder.
struct JSONResponse<Body: Encodable & Sendable>: ResponseGenerator {
    var status: HTTPResponse.Status = .ok
    var body: Body

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONEncoder.flashback.encode(body)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension JSONEncoder {
    /// Sorted keys (byte-stable output); dates are encoded as strings by the DTOs themselves.
    static var flashback: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension Date {
    /// ISO-8601 with milliseconds in UTC, as the Flashback API writes dates (`2025-10-01T10:00:00.000Z`).
    var flashbackTimestamp: String {
        formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

/// `{"success": true, "message": …}`.
struct ActionResponse: Encodable, Sendable {
    var success = true
    var message: String
}

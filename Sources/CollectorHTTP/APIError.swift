import Catalog
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// A client-facing error of the Flashback API, rendered as `{"success":false,"message":…}`
/// with `Content-Type: application/json` and the status it carries.
///
/// Messages are shown to callers: they name what was wrong with the request and never contain
/// secrets or another organization's data.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var message: String
    public var headers: HTTPFields

    /// A `APIError` from its parts.
    public init(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status.code) \(message)" }

    private struct Body: Encodable {
        let success = false
        let message: String
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        APIError.render(status: status, message: message, headers: headers)
    }

    /// Builds the JSON error response without going through a context's encoder.
    static func render(status: HTTPResponse.Status, message: String, headers extra: HTTPFields = [:]) -> Response {
        let data = (try? JSONEncoder().encode(Body(message: message))) ?? Data(#"{"success":false,"message":"error"}"#.utf8)
        var headers = extra
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Renders every error that escapes a handler in the Flashback shape: Hummingbird's own
/// `HTTPError`s (unknown route, body too large, bad JSON) keep their status; anything else is a
/// 500 whose details go to the log, not to the caller.
public struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The defaults, as documented on each property.
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return APIError.render(status: error.status, message: error.message, headers: error.headers)
        } catch let error as any FlashbackResponseError {
            // Registry, catalog, stats, ingest and request-value refusals (ErrorMapping.swift).
            return try error.response(from: request, context: context)
        } catch let error as HTTPError {
            let message = error.body ?? (error.status == .notFound
                ? "not found: \(request.method) \(request.uri.path)"
                : error.status.reasonPhrase)
            return APIError.render(status: error.status, message: message, headers: error.headers)
        } catch let error as RepoRuleError {
            return try error.response(from: request, context: context)
        } catch let error as any HTTPResponseError {
            return APIError.render(status: error.status, message: error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError.render(status: .internalServerError, message: "internal error")
        }
    }
}

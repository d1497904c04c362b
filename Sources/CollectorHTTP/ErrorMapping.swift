import Catalog
import CollectorModel
import FlashbackWire
import HTTPTypes
import Hummingbird
import Ingestion
import Registry
import Stats

// Each error of the layers below knows its HTTP answer here, once: routes throw them as they
// come, and ``APIErrorMiddleware`` renders every `HTTPResponseError` in the Flashback JSON shape.

/// An error answered with the Flashback body `{"success":false,"message":…}`.
protocol FlashbackResponseError: HTTPResponseError {
    /// Shown to the caller: names what was wrong, never a secret or another organization's data.
    var message: String { get }
    /// Extra response headers (`Retry-After`, `WWW-Authenticate`).
    var headers: HTTPFields { get }
}

extension FlashbackResponseError {
    var headers: HTTPFields { [:] }

    /// The JSON error response.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        APIError.render(status: status, message: message, headers: headers)
    }
}

extension RegistryError: HTTPResponseError, FlashbackResponseError {
    /// 400 for a malformed or unacceptable request (and a conflicting state, as the contract
    /// says), 403, 404, 429 for an exhausted quota.
    public var status: HTTPResponse.Status {
        switch kind {
        case .invalid, .conflict: return .badRequest
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .quotaExceeded: return .tooManyRequests
        }
    }
}

extension CatalogError: HTTPResponseError, FlashbackResponseError {
    /// 400, 403, 404, 429 for an exhausted quota.
    public var status: HTTPResponse.Status {
        switch kind {
        case .invalid: return .badRequest
        case .forbidden: return .forbidden
        case .notFound: return .notFound
        case .quotaExceeded: return .tooManyRequests
        }
    }
}

extension StoreError: HTTPResponseError, FlashbackResponseError {
    /// 503 with `Retry-After` while the control-plane store cannot be reached; a conflict the
    /// service did not translate into its own rule is a 400 like the rules' own.
    public var status: HTTPResponse.Status {
        switch self {
        case .conflict: return .badRequest
        case .unavailable: return .serviceUnavailable
        }
    }

    var message: String {
        switch self {
        case .conflict(let message): return message
        case .unavailable: return "The control plane's database is unavailable; nothing was changed. Retry in a few seconds."
        }
    }

    var headers: HTTPFields {
        switch self {
        case .conflict: return [:]
        case .unavailable: return [.retryAfter: "5"]
        }
    }
}

extension RepoRuleError: HTTPResponseError {
    /// A repository rule violation is a 400 carrying the contract's `error_code` next to the message.
    public var status: HTTPResponse.Status { .badRequest }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = RepoErrorResponse(message: message, error_code: code.rawValue, error_message: message)
        return try JSONResponse(status: status, body: body).response(from: request, context: context)
    }
}

extension NodeEnvironmentError: HTTPResponseError, FlashbackResponseError {
    /// The operator's env files or the verifying key cannot be served: the collector's fault.
    public var status: HTTPResponse.Status { .internalServerError }

    var message: String { "the node environment cannot be served: \(description)" }
}

extension RequestError: HTTPResponseError, FlashbackResponseError {
    /// A refused request value (`FlashbackWire`'s checks) is a 400 naming it.
    public var status: HTTPResponse.Status { .badRequest }
}

extension StatsError: HTTPResponseError, FlashbackResponseError {
    /// 404 for an id the caller may not see; 400 for a bad range or a query over the limits.
    public var status: HTTPResponse.Status {
        switch self {
        case .notFound: return .notFound
        case .invalid, .limit: return .badRequest
        }
    }
}

extension StatsSourceError: HTTPResponseError, FlashbackResponseError {
    /// 503 with `Retry-After`: the cluster TSDB the stats read did not answer.
    public var status: HTTPResponse.Status { .serviceUnavailable }

    var message: String { description }

    var headers: HTTPFields { [.retryAfter: "5"] }
}

extension IngestError: HTTPResponseError, FlashbackResponseError {
    /// 503 with `Retry-After` when saturated, 415, 413, 400.
    public var status: HTTPResponse.Status {
        switch self {
        case .saturated: return .serviceUnavailable
        case .unsupportedEncoding: return .unsupportedMediaType
        case .tooLarge: return .contentTooLarge
        case .invalid: return .badRequest
        }
    }

    var message: String { description }

    var headers: HTTPFields {
        if case .saturated = self { return [.retryAfter: "1"] }
        return [:]
    }
}

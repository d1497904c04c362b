import CoreMetrics
import Exposition
import HTTPTypes
import Hummingbird
import Synchronization

/// Counts every HTTP request by route template, method and status class
/// (`flashback_http_requests_total{route="/bucket/{bucketId}", method="GET", status="4xx"}`), so
/// that a storm of refused requests shows on `/metrics` and in the dashboards.
///
/// Labels never carry client strings: the route is the template the router matched (`unmatched`
/// for a path no route takes), the method one of a fixed list (`other` for the rest), the status
/// its class. So the number of series is bounded by the routes × 6 methods × 5 classes. Install
/// it outermost (before ``APIErrorMiddleware``), so that it counts the status the client gets.
public struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    private let counters: RequestCounters

    public static var name: String { "flashback_http_requests_total" }
    public static var help: String { "HTTP requests answered, by route template, method and status class." }

    /// - Parameter factory: where the counters live (the registry `/metrics` renders).
    public init(factory: any MetricsFactory) {
        counters = RequestCounters(factory: factory, name: Self.name)
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            counters.count(route: context.endpointPath, method: request.method, status: response.status)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            counters.count(route: context.endpointPath, method: request.method, status: status)
            throw error
        }
    }
}

/// The counters of ``RequestMetricsMiddleware``, made on first use per label set.
final class RequestCounters: Sendable {
    struct Key: Hashable {
        var route: String
        var method: String
        var status: String
    }

    private let factory: any MetricsFactory
    private let name: String
    private let counters = Mutex<[Key: Counter]>([:])

    init(factory: any MetricsFactory, name: String) {
        self.factory = factory
        self.name = name
    }

    static let methods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]

    func count(route: String?, method: HTTPRequest.Method, status: HTTPResponse.Status) {
        let methodLabel = Self.methods.contains(method.rawValue) ? method.rawValue : "other"
        let statusClass = min(max(status.code / 100, 1), 5)
        let key = Key(route: route ?? "unmatched", method: methodLabel, status: "\(statusClass)xx")
        let counter = counters.withLock { counters in
            if let known = counters[key] { return known }
            let made = Counter(label: name, dimensions: [("route", key.route), ("method", key.method), ("status", key.status)], factory: factory)
            counters[key] = made
            return made
        }
        counter.increment()
    }
}

import Hummingbird
import NIOCore

/// `/health`, `/-/healthy` and `/-/ready`, answered without a token.
///
/// `/-/healthy` says the process is serving HTTP; `/-/ready` says it should get traffic (storage
/// open, listeners bound, not shutting down) and answers 503 otherwise; `/health` is the JSON
/// form of both for humans and the Flashback dashboards.
///
/// In cluster mode a replica whose control-plane database is unreachable stays ready (200) but
/// says it is degraded: every replica shares that database, so taking them out of the load
/// balancer would stop the ingest from known nodes that goes on meanwhile; control-plane writes
/// answer 503 with `Retry-After` on their own.
struct HealthRoutes {
    let readiness: ServiceReadiness
    let version: String
    let controlPlane: ControlPlaneHealth?

    struct Health: ResponseEncodable {
        let success: Bool
        let status: String
        let ready: Bool
        let version: String
        /// `embedded`, `ok` or `unavailable`.
        let registry: String
    }

    var registryState: String {
        guard let controlPlane else { return "embedded" }
        return controlPlane.isAvailable() ? "ok" : "unavailable"
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: OpenAPIDocument.json)))
        }
        router.get("/-/healthy") { _, _ in
            HealthRoutes.plain(.ok, "Flashback Collector is Healthy.\n")
        }
        router.get("/-/ready") { _, _ in
            guard readiness.isReady else {
                return HealthRoutes.plain(.serviceUnavailable, readiness.isStopping ? "Flashback Collector is shutting down.\n" : "Flashback Collector is not ready.\n")
            }
            if registryState == "unavailable" {
                return HealthRoutes.plain(.ok, "Flashback Collector is Ready, degraded: the control-plane database is unavailable (ingest from known nodes goes on; control-plane writes answer 503).\n")
            }
            return HealthRoutes.plain(.ok, "Flashback Collector is Ready.\n")
        }
        router.get("/health") { _, _ -> EditedResponse<Health> in
            let ready = readiness.isReady
            let registry = registryState
            let status = ready ? (registry == "unavailable" ? "degraded" : "ok") : (readiness.isStopping ? "stopping" : "starting")
            let body = Health(success: ready, status: status, ready: ready, version: version, registry: registry)
            return EditedResponse(status: ready ? .ok : .serviceUnavailable, response: body)
        }
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

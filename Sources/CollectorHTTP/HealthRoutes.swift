import Hummingbird
import NIOCore

/// `/health`, `/-/healthy` and `/-/ready`, answered without a token.
///
/// `/-/healthy` says the process is serving HTTP; `/-/ready` says it should get traffic (storage
/// open, listeners bound, not shutting down) and answers 503 otherwise; `/health` is the JSON
/// form of both for humans and the Flashback dashboards.
struct HealthRoutes {
    let readiness: ServiceReadiness
    let version: String

    struct Health: ResponseEncodable {
        let success: Bool
        let status: String
        let ready: Bool
        let version: String
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
            readiness.isReady
                ? HealthRoutes.plain(.ok, "Flashback Collector is Ready.\n")
                : HealthRoutes.plain(.serviceUnavailable, readiness.isStopping ? "Flashback Collector is shutting down.\n" : "Flashback Collector is not ready.\n")
        }
        router.get("/health") { _, _ -> EditedResponse<Health> in
            let ready = readiness.isReady
            let body = Health(success: ready, status: ready ? "ok" : (readiness.isStopping ? "stopping" : "starting"), ready: ready, version: version)
            return EditedResponse(status: ready ? .ok : .serviceUnavailable, response: body)
        }
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

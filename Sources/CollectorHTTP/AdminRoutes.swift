import CollectorModel
import CollectorStore
import Foundation
import Hummingbird
import NIOPosix

/// `/admin/*`: operator endpoints, guarded by their own bearer token (`--admin-token-file`) and
/// absent (404) when none is set.
///
/// `POST /admin/checkpoint` takes a consistent copy of the running database for an online backup
/// (`flashback-collector backup --server`), which copies it and then deletes it with
/// `DELETE /admin/checkpoint/{id}`. Ingest goes on meanwhile: a RocksDB checkpoint flushes the
/// memtables and hard-links the SST files.
struct AdminRoutes {
    let checkpoints: Checkpoints
    let token: String
    /// Runs before each checkpoint (writes the buffered last-heard times).
    let beforeCheckpoint: @Sendable () -> Void
    let now: @Sendable () -> Date

    struct CheckpointBody: ResponseEncodable {
        let success = true
        let id: String
        /// The checkpoint's folder on the collector's host: `rocksdb/` and `secrets/` under it.
        let path: String
        let identity: String
        let secrets: [String]
        let created: String
    }

    func register(on router: some RouterMethods<CollectorRequestContext>) {
        let group = router.group("/admin")
        group.post("/checkpoint") { request, _ -> EditedResponse<CheckpointBody> in
            try authorize(request)
            let (checkpoints, beforeCheckpoint, now) = (checkpoints, beforeCheckpoint, now())
            let checkpoint = try await NIOThreadPool.singleton.runIfActive {
                beforeCheckpoint()
                return try checkpoints.create(now: now)
            }
            return EditedResponse(status: .created, response: CheckpointBody(
                id: checkpoint.id, path: checkpoint.path, identity: checkpoint.identity, secrets: checkpoint.secrets,
                created: ISO8601DateFormatter().string(from: checkpoint.created)))
        }
        group.delete("/checkpoint/{id}") { request, context -> JSONResponse<ActionResponse> in
            try authorize(request)
            let id = context.parameters.get("id") ?? ""
            guard checkpoints.remove(id) else { throw APIError(.notFound, "no checkpoint \(Checkpoints.isValidID(id) ? id : "with that id")") }
            return JSONResponse(body: ActionResponse(message: "checkpoint \(id) deleted"))
        }
    }

    private func authorize(_ request: Request) throws {
        let sent = CallerAuthentication.credential(in: request.headers) ?? ""
        guard ConstantTime.equals(sent.utf8, token.utf8) else {
            throw APIError(.unauthorized, "admin endpoints need Authorization: Bearer <the --admin-token-file token>", headers: [.wwwAuthenticate: "Bearer"])
        }
    }
}

#!/usr/bin/env python3
"""Writes the OpenAPI 3.1 document of the collector's HTTP API.

The document is built here (one place, readable) and written twice:
  docs/openapi.json                                   for readers and tools
  Sources/CollectorHTTP/OpenAPIDocument.swift         served at GET /openapi.json
Run `python3 scripts/openapi.py` after changing a route; `OpenAPIDocumentTests` fails when the
router has a route the document lacks (or the other way round) or the two copies differ.
"""
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STR = {"type": "string"}
BOOL = {"type": "boolean"}
NUM = {"type": "number"}
INT = {"type": "integer"}


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props, required=(), additional=True, description=None):
    schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = list(required)
    if not additional:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def arr(items, max_items=None):
    schema = {"type": "array", "items": items}
    if max_items:
        schema["maxItems"] = max_items
    return schema


def opt(schema):
    """A value the contract may send as null."""
    types = schema.get("type")
    out = dict(schema)
    out["type"] = [types, "null"] if isinstance(types, str) else types
    return out


def text(max_length, min_length=None, **extra):
    schema = {"type": "string", "maxLength": max_length}
    if min_length is not None:
        schema["minLength"] = min_length
    schema.update(extra)
    return schema


schemas = {
    "Error": obj({"success": {"const": False}, "message": STR}, ["success", "message"],
                 description="Every 4xx/5xx of the Flashback API: what was wrong, naming the parameter."),
    "WriteError": obj({"success": {"const": False}, "code": STR, "message": STR, "error": STR, "line": INT,
                       "rejected": INT, "accepted": INT}, ["message"],
                      description="InfluxDB-style refusal of /write: the first refused line and the counts."),
    "Action": obj({"success": BOOL, "message": STR}, ["success", "message"]),
    "Health": obj({"success": BOOL, "status": STR, "ready": BOOL, "version": STR}, ["success", "status", "ready", "version"]),
    "WhoAmI": obj({"success": BOOL, "organization": STR, "user": STR, "role": INT, "roleName": STR, "workspaces": arr(STR)},
                  ["success", "organization", "role"]),
    "NodeTimestamp": {"oneOf": [{"type": "integer", "minimum": -9223372036854775808, "maximum": 9223372036854775807},
                                text(64, description="Unix seconds in digits or an ISO-8601 date-time")],
                      "description": "Signed as sent: the number's digits or the string verbatim (clock skew ±300 s)."},
    "RegisterRequest": obj({
        "ip": text(64, 1), "region": text(64, 1), "timestamp": ref("NodeTimestamp"), "signature": text(4096, 1),
        "provider": opt(STR), "status": STR, "version": STR, "id_org": opt(STR), "org_id": opt(STR),
        "nodeServices": opt({"type": "integer", "minimum": 0, "maximum": 65535}), "url": opt(STR),
    }, ["ip", "region", "timestamp", "signature", "status", "version"]),
    "RegisterResponse": obj({"success": BOOL, "message": STR, "nodeId": STR, "nodeToken": STR}, ["success", "nodeId", "nodeToken"]),
    "SecretsRequest": obj({"ip": text(64, 1), "region": text(64, 1), "timestamp": ref("NodeTimestamp"), "signature": text(4096, 1),
                           "id_org": opt(STR), "org_id": opt(STR)}, ["ip", "region", "timestamp", "signature"]),
    "SecretsResponse": {"type": "object", "properties": {"success": BOOL}, "required": ["success"],
                        "additionalProperties": STR,
                        "description": "Per configured service s3, gcs, blob: env_<svc>_enc, a JSON string of {key, iv, ct, mac} "
                                       "(Base64; key = AES-256 key under RSA-OAEP SHA-256 to the verifying public key, iv + ct = "
                                       "AES-256-CTR, mac = HMAC-SHA256(key, iv || ct)), or env_<svc> (Base64) when sealing is off."},
    "UnregisterRequest": obj({"ip": text(64, 1), "region": opt(text(64)), "timestamp": ref("NodeTimestamp"),
                              "signature": text(4096, 1), "id_org": opt(STR), "org_id": opt(STR)}, ["ip", "timestamp", "signature"]),
    "NodeInfo": obj({"id": STR, "ip": STR, "region": STR, "version": STR, "status": STR, "latencyMs": opt(NUM),
                     "lastUpdated": STR, "url": STR, "id_org": opt(STR), "nodeServices": INT, "provider": opt(STR), "createdAt": STR},
                    ["id", "ip", "region", "status"]),
    "NodeList": obj({"success": BOOL, "data": arr(ref("NodeInfo")), "total": INT}, ["success", "data", "total"]),
    "OrganizationKeyRequest": obj({"publicKey": text(16384, description="RSA public key, PEM")}),
    "OrganizationKey": obj({"id": STR, "orgId": STR, "publicKey": STR, "createdAt": STR,
                            "nodeKeys": arr(obj({"keyId": STR, "nodeId": STR}))}, ["id", "orgId"]),
    "OrganizationKeyList": obj({"success": BOOL, "message": STR, "data": arr(ref("OrganizationKey"))}, ["success", "data"]),
    "OrganizationKeyCreated": obj({"success": BOOL}, ["success"],
                                  description="The new key pair: the private key is shown once (JSON), or the PEM itself when asked for."),
    "StatusRequest": obj({
        "ip": text(64, 1), "region": text(64, 1), "timestamp": ref("NodeTimestamp"), "signature": text(4096, 1), "id_org": opt(STR), "org_id": opt(STR),
        "buckets": arr(obj({"unitId": opt(STR), "bucketId": opt(STR),
                            "status": {"type": "string", "description": "ONLINE, OFFLINE, DISCONNECTED (or 1, 0, -1)"},
                            "latencyMs": opt(NUM), "latency_ms": opt(NUM),
                            "createdAt": opt(text(64, description="ISO-8601 date-time, 1970–2261"))}, ["status"]), 10000),
    }, ["ip", "region", "timestamp", "signature", "buckets"]),
    "TrafficRecord": obj({
        "timestamp": opt({"type": "integer", "minimum": 0, "maximum": 9214646399, "description": "Unix seconds (default: now)"}),
        "repoId": opt(STR), "unitId": opt(STR), "bucketId": opt(STR), "upl_bytes": opt(NUM), "dwl_bytes": opt(NUM),
        "size_change": opt(NUM), "requests": opt(NUM), "latency_ms": opt(NUM), "host": opt(STR)}),
    "ReportResponse": obj({"success": BOOL, "message": STR, "stored": INT}, ["success", "stored"]),
    "BucketRequest": obj({k: opt(text(n)) for k, n in [
        ("name", 128), ("bucket", 255), ("storageType", 16), ("key", 256), ("secret", 8192), ("region", 64),
        ("endpoint", 512), ("workspaceId", 128), ("walletAddress", 128), ("projectId", 128), ("apiKeyUuid", 128)]},
        description="Create: name, bucket, storageType (S3, GCS, BLOB, AZURE) and workspaceId are required."),
    "ValidateRequest": obj({k: opt(text(n)) for k, n in [("bucket", 255), ("key", 256), ("secret", 8192), ("endpoint", 512), ("region", 64)]},
                           description="Values to test instead of the stored ones; key/secret/endpoint need ADMINISTRATORS or OWNER."),
    "Bucket": obj({"id": STR, "name": STR, "bucket": STR, "storageType": STR, "key": opt(STR), "endpoint": opt(STR),
                   "region": opt(STR), "status": opt(STR), "lastStatusAt": opt(STR), "latency_ms": opt(INT), "projectId": opt(STR),
                   "createdAt": STR, "workspaceId": STR, "walletAddress": opt(STR),
                   "repos": arr(obj({"id": STR, "name": STR, "storageType": STR, "createdAt": STR}))},
                  ["id", "name", "bucket", "storageType", "workspaceId"]),
    "BucketList": obj({"success": BOOL, "buckets": arr(ref("Bucket")), "units": opt(arr(ref("Bucket")))}, ["success", "buckets"],
                      description="On /unit also `units`, the same list under its legacy name."),
    "BucketWrite": obj({"success": BOOL, "bucketId": STR, "unitId": opt(STR), "status": opt(STR), "latency_ms": opt(INT)}, ["success", "bucketId"]),
    "Validation": obj({"success": BOOL, "status": STR, "latency_ms": INT, "message": STR}, ["success", "status", "message"]),
    "RepoBucketRequest": obj({"folder": opt(text(256)), "master": opt(BOOL), "bucketId": opt(STR), "unitId": opt(STR),
                              "bucket": {"oneOf": [STR, obj({"id": opt(STR)}), {"type": "null"}]},
                              "unit": {"oneOf": [STR, obj({"id": opt(STR)}), {"type": "null"}]}}),
    "RepoRequest": obj({"name": text(128), "storageType": text(16), "mode": opt(text(16, description="NORMAL or MIRROR")),
                        "workspaceId": text(128), "repoBuckets": opt(arr(ref("RepoBucketRequest"))),
                        "repoUnits": opt(arr(ref("RepoBucketRequest"))), "walletAddress": opt(text(128))},
                       ["name", "storageType", "workspaceId"]),
    "RepoValidateRequest": obj({"repoId": opt(STR), "mode": opt(text(16, description="NORMAL or MIRROR")),
                                "repoBuckets": opt(arr(ref("RepoBucketRequest"))), "repoUnits": opt(arr(ref("RepoBucketRequest")))}),
    "APIKey": obj({"id": STR, "name": STR, "accessType": STR, "key": STR, "repoId": STR, "createdAt": STR}, ["id", "accessType", "key"]),
    "Repo": obj({"id": STR, "name": STR, "storageType": STR, "mode": STR, "workspaceId": STR,
                 "buckets": arr(obj({"folder": STR, "master": BOOL, "bucketId": STR, "bucket": {"oneOf": [ref("Bucket"), {"type": "null"}]}})),
                 "apiKeys": arr(ref("APIKey")), "createdAt": STR, "walletAddress": opt(STR)}, ["id", "name", "storageType"]),
    "RepoList": obj({"success": BOOL, "repos": arr(ref("Repo"))}, ["success", "repos"]),
    "RepoWrite": obj({"success": BOOL}, ["success"]),
    "APIKeyRequest": obj({"name": text(128), "accessType": text(16, description="READ, WRITE or ADMIN"), "repoId": opt(STR)},
                         ["name", "accessType"]),
    "APIKeyCreated": obj({"success": BOOL, "id": STR, "key": STR, "secret": STR}, ["success", "id", "key", "secret"]),
    "APIKeyList": obj({"success": BOOL, "keys": arr(ref("APIKey"))}, ["success", "keys"]),
    "AuthorizeRequest": obj({
        "method": text(16), "path": text(4096, description="Starts with '/'"), "query": opt(text(8192)),
        "headers": {"oneOf": [{"type": "object", "additionalProperties": STR}, arr(arr(STR), 200)]}, "bucket": opt(STR)},
        ["method", "path", "headers"]),
    "AuthorizeResponse": obj({"success": BOOL, "allow": BOOL, "message": STR, "operation": opt(STR), "repoId": opt(STR),
                              "apiKeyId": opt(STR), "accessType": opt(STR)}, ["success", "allow", "message"]),
    "DataRows": obj({"success": BOOL, "data": arr({"type": "object"})}, ["success", "data"],
                    description="`{data: [row…], success: true}`; the rows of each route are listed in flashback-api.md §8."),
    "BucketTotals": obj({"success": BOOL, "stats": arr(obj({"bucketId": STR, "unitId": opt(STR), "totalCount": STR,
                         "totalUploadBytes": STR, "totalDownloadBytes": STR, "totalSizeChange": STR}))}, ["success", "stats"]),
    "RepoTotals": obj({"success": BOOL, "stats": arr(obj({"repoId": STR, "totalUploadBytes": STR, "totalDownloadBytes": STR,
                       "totalSizeChange": STR}))}, ["success", "stats"]),
    "BucketStatus": obj({"bucketId": STR, "unitId": opt(STR), "nodeStatus": arr(obj({"nodeId": STR, "ip": STR, "region": STR, "version": STR, "status": STR,
                         "latency_ms": opt(INT), "latencyMs": opt(INT), "lastUpdated": STR}))}, ["bucketId", "nodeStatus"]),
    "DayRequest": obj({"day": opt(text(32, description="ISO date or ddmmyyyy; default today"))}),
    "BucketNodeStats": obj({"success": BOOL, "nodeStats": arr(obj({"nodeId": STR, "ip": STR, "host": STR, "perc_uptime": NUM,
                            "avg_latency_ms": NUM, "version": STR, "node_status": STR, "last_updated": STR}))}, ["success", "nodeStats"]),
    "Checkpoint": obj({"success": BOOL, "id": STR, "path": STR, "identity": STR, "secrets": arr(STR), "created": STR},
                      ["success", "id", "path", "identity", "secrets", "created"],
                      description="A checkpoint of the running database for an online backup, on the collector's host."),
    "Rollups": obj({"success": BOOL, "count": opt(INT), "series": opt(arr(obj({"measurement": STR, "field": STR,
                    "tags": {"type": "object", "additionalProperties": STR}, "rows": arr({"type": "object"})})))}, ["success"]),
}

JSON = "application/json"


def error(description):
    return {"description": description, "content": {JSON: {"schema": ref("Error")}}}


def ok(schema_name, description="OK", status="200"):
    return {status: {"description": description, "content": {JSON: {"schema": ref(schema_name)}}}}


COMMON = {"400": error("A parameter or the body is not acceptable; the message names it."),
          "413": error("The body is larger than --max-body-size.")}
AUTH = {"401": error("No token, or an invalid or expired one."), "403": error("The token's role or organization may not do this.")}
NOT_FOUND = {"404": error("No such resource in the caller's organization.")}


def responses(success, *extra):
    out = dict(success)
    for group in extra:
        out.update(group)
    return out


def body(schema_name, required=True):
    return {"required": required, "content": {JSON: {"schema": ref(schema_name)}}}


def query(name, schema, description, required=False):
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def path(name):
    return {"name": name, "in": "path", "required": True, "schema": text(256, 1)}


ISO_DATE = text(64, description="ISO-8601 date (2024-02-01) or date-time, 1970-01-01 … 2261-12-31")
DAY = text(64, description="ddmmyyyy (15012024) or ISO-8601 date, 1970 … 2261")
# Lists stay well inside NIO's 80 kB request head (a longer head is refused before routing).
LIST = text(1024, description="comma-separated ids (longer lists: several requests)")

BEARER = [{"bearer": []}]
OPEN = []
OPTIONAL_BEARER = [{}, {"bearer": []}]

paths = {}


# Changes to the control plane (and signed node messages, whose replay guard is shared) answer
# 503 + Retry-After in cluster mode while the shared PostgreSQL is unreachable.
CONTROL_PLANE_TAGS = {"buckets", "organizations", "repositories", "nodes"}
UNAVAILABLE = error("Cluster mode: the control plane's database is unavailable; nothing was changed. Retry after Retry-After.")


def op(method, route, summary, tag, security, resp, parameters=(), request=None, description=None):
    if method != "get" and tag in CONTROL_PLANE_TAGS and "503" not in resp:
        resp = dict(resp, **{"503": UNAVAILABLE})
    entry = {"summary": summary, "tags": [tag], "security": security, "responses": resp,
             "operationId": (method + "_" + route.strip("/").replace("/", "_").replace("{", "").replace("}", "").replace("-", "")) or method}
    if parameters:
        entry["parameters"] = list(parameters)
    if request:
        entry["requestBody"] = request
    if description:
        entry["description"] = description
    paths.setdefault(route, {})[method] = entry


# Health and discovery
op("get", "/-/healthy", "Liveness (text)", "operations", OPEN,
   {"200": {"description": "Alive", "content": {"text/plain": {"schema": STR}}}})
op("get", "/-/ready", "Readiness (text); 503 while starting or stopping", "operations", OPEN,
   {"200": {"description": "Ready", "content": {"text/plain": {"schema": STR}}},
    "503": {"description": "Not ready", "content": {"text/plain": {"schema": STR}}}})
op("get", "/health", "Health as JSON", "operations", OPEN, responses(ok("Health"), {"503": {"description": "Not ready", "content": {JSON: {"schema": ref("Health")}}}}))
op("get", "/metrics", "Prometheus text 0.0.4 or OpenMetrics (Accept)", "operations", OPTIONAL_BEARER,
   {"200": {"description": "Metrics", "content": {"text/plain": {"schema": STR}, "application/openmetrics-text": {"schema": STR}}},
    "401": error("--metrics-token is set and the scrape did not send it.")})
op("get", "/openapi.json", "This document", "operations", OPEN, {"200": {"description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}})
# Operators (--admin-token-file; absent without it)
ADMIN_OFF = error("The collector runs without --admin-token-file: there are no admin endpoints.")
ADMIN_AUTH = {"401": error("The request did not send the admin token (--admin-token-file) as a Bearer token.")}
op("post", "/admin/checkpoint", "Checkpoint the database for an online backup (admin token)", "operations", BEARER,
   dict(ok("Checkpoint", "Checkpoint written under DATA_DIR/checkpoints; delete it once copied", "201"), **ADMIN_AUTH, **{"404": ADMIN_OFF}),
   description="flashback-collector backup --server calls it, copies the checkpoint (RocksDB files hard-linked, copies of "
               "master.key and jwt.secret) into its backup folder and deletes it. Ingest goes on meanwhile.")
op("delete", "/admin/checkpoint/{id}", "Delete a checkpoint (admin token)", "operations", BEARER,
   dict(ok("Action"), **ADMIN_AUTH, **{"404": error("No such checkpoint, or no --admin-token-file.")}), [path("id")])
op("get", "/whoami", "The caller's identity", "identity", BEARER, responses(ok("WhoAmI"), AUTH))

# Ingest
for method in ("get", "head"):
    op(method, "/ping", "InfluxDB ping", "ingest", OPEN, {"204": {"description": "Alive"}})
write_params = [query("precision", {"type": "string", "enum": ["ns", "n", "us", "u", "µ", "µs", "ms", "s"]}, "timestamp unit (default ns)"),
                query("db", text(256), "ignored (InfluxDB 1.x)"), query("org", text(256), "ignored (InfluxDB 2.x)"),
                query("bucket", text(256), "ignored (InfluxDB 2.x)")]
write_resp = {"204": {"description": "Every line stored (WAL on)"},
              "400": {"description": "Refused lines; the accepted ones are stored", "content": {JSON: {"schema": ref("WriteError")}}},
              "413": error("Body (or its decompression) larger than --max-body-size."),
              "415": error("Content-Encoding other than gzip or identity."),
              "503": error("Write path saturated; retry after Retry-After.")}
write_resp.update(AUTH)
for route in ("/write", "/api/v2/write"):
    op("post", route, "Line protocol (node or OWNER/ADMINISTRATORS token)", "ingest", BEARER, write_resp, write_params,
       {"required": False, "content": {"text/plain": {"schema": text(33554432)}}})
op("get", "/api/v1/rollups", "Minute or day rollups of one field", "ingest", BEARER, responses(ok("Rollups"), COMMON, AUTH), [
    query("measurement", text(256, 1), "measurement", True), query("field", text(256, 1), "field", True),
    query("resolution", {"type": "string", "enum": ["minute", "day"]}, "default minute"),
    query("start", {"type": "string", "maxLength": 64}, "Unix seconds or ISO-8601, 1970 … 2261 (default: an hour ago)"),
    query("end", {"type": "string", "maxLength": 64}, "Unix seconds or ISO-8601, after start (default: now + 60 s)"),
    query("aggregate", {"type": "string", "enum": ["count"]}, "count samples instead of listing rows")])

# Nodes
SIGNED = {"401": error("Signature does not verify, or the timestamp is outside the window."), **NOT_FOUND}
op("post", "/register", "Register a bridge node (RSA-signed)", "nodes", OPEN, responses(ok("RegisterResponse"), COMMON, SIGNED,
   {"409": error("Registered elsewhere with another key."), "403": error("Key not allowed for this organization.")}), request=body("RegisterRequest"))
op("post", "/secrets", "The installer's env files for a node (RSA-signed, sealed to the organization key)", "nodes", OPEN,
   responses(ok("SecretsResponse"), COMMON, SIGNED, {"500": error("The operator's env files cannot be served.")}),
   request=body("SecretsRequest"))
op("post", "/unregister", "Unregister a bridge node (RSA-signed)", "nodes", OPEN, responses(ok("Action"), COMMON, SIGNED,
   {"403": error("Key not allowed for this organization.")}), request=body("UnregisterRequest"))
op("get", "/node", "Public nodes, plus the caller's organization's with a token", "nodes", OPTIONAL_BEARER,
   responses(ok("NodeList"), COMMON, {"401": error("The token sent is invalid.")}),
   [query("nodeServices", {"type": "integer", "minimum": 0, "maximum": 65535}, "service bitmask filter")])
for route in ("/status", "/node/status"):
    op("post", route, "Node status report (RSA-signed)", "nodes", OPEN,
       responses(ok("ReportResponse"), COMMON, SIGNED, {"403": error("Key not allowed."), "503": error("Write path saturated.")}),
       request=body("StatusRequest"))
op("post", "/stats/report", "Bucket traffic records (node or OWNER/ADMINISTRATORS token)", "nodes", BEARER,
   responses(ok("ReportResponse"), COMMON, AUTH, {"503": error("Write path saturated.")}),
   request={"required": True, "content": {JSON: {"schema": arr(ref("TrafficRecord"), 100000)}}})
op("post", "/apikey/authorize", "May this app request signed with a repo key run? (node token)", "nodes", BEARER,
   responses(ok("AuthorizeResponse", "Allowed"), COMMON, {"401": error("Missing or invalid node token."),
   "403": {"description": "Denied", "content": {JSON: {"schema": ref("AuthorizeResponse")}}}}), request=body("AuthorizeRequest"))

# Organization keys and nodes
ORG = [path("orgId")]
op("post", "/organization/{orgId}/key", "Create an organization key pair", "organizations", BEARER,
   responses(ok("OrganizationKeyCreated"), COMMON, AUTH, {"409": error("--max-org-keys reached.")}), ORG,
   {"required": False, "content": {JSON: {"schema": ref("OrganizationKeyRequest")}}})
op("get", "/organization/{orgId}/key", "Organization keys and the nodes that use them", "organizations", BEARER,
   responses(ok("OrganizationKeyList"), AUTH), ORG)
op("delete", "/organization/{orgId}/key", "Delete every key of the organization", "organizations", BEARER, responses(ok("Action"), AUTH, NOT_FOUND), ORG)
op("delete", "/organization/{orgId}/key/{idKey}", "Delete one key", "organizations", BEARER, responses(ok("Action"), AUTH, NOT_FOUND), ORG + [path("idKey")])
op("get", "/organization/{orgId}/nodes", "The organization's nodes", "organizations", BEARER, responses(ok("NodeList"), AUTH), ORG)
op("delete", "/organization/{orgId}/node/{nodeId}", "Remove a node", "organizations", BEARER, responses(ok("Action"), AUTH, NOT_FOUND), ORG + [path("nodeId")])
op("post", "/organization/{orgId}/node/{nodeId}/restore", "Restore a removed node (it registers again for a token)", "organizations", BEARER,
   responses(ok("Action"), AUTH, NOT_FOUND, {"400": error("The node is not deleted.")}), ORG + [path("nodeId")])

# Buckets (and the legacy /unit alias)
for prefix in ("/bucket", "/unit"):
    WS = [query("workspaceId", text(128), "only this workspace")]
    op("get", prefix, "Buckets of the caller's workspaces", "buckets", BEARER, responses(ok("BucketList"), AUTH), WS)
    op("get", f"{prefix}/available", "Buckets not yet in a repository", "buckets", BEARER,
       responses({"200": {"description": "OK", "content": {JSON: {"schema": arr(ref("Bucket"))}}}}, AUTH), WS)
    op("post", prefix, "Create a bucket (credentials validated when given)", "buckets", BEARER,
       responses(ok("BucketWrite"), COMMON, AUTH, {"409": error("Name taken.")}), request=body("BucketRequest"))
    op("put", f"{prefix}/{{bucketId}}", "Update a bucket", "buckets", BEARER,
       responses(ok("BucketWrite"), COMMON, AUTH, NOT_FOUND, {"409": error("Name taken.")}), [path("bucketId")], body("BucketRequest"))
    op("delete", f"{prefix}/{{bucketId}}", "Delete a bucket", "buckets", BEARER,
       responses(ok("Action"), AUTH, NOT_FOUND, {"409": error("Still in a repository.")}), [path("bucketId")])
    op("post", f"{prefix}/{{bucketId}}/validate", "Test the bucket's credentials against its provider", "buckets", BEARER,
       responses(ok("Validation"), COMMON, AUTH, NOT_FOUND), [path("bucketId")], body("ValidateRequest", required=False))
    op("get", f"{prefix}/stats", "Traffic totals per bucket", "stats", BEARER, responses(ok("BucketTotals"), COMMON, AUTH, NOT_FOUND),
       [query("bucketId", LIST, "buckets"), query("unitId", LIST, "legacy name of bucketId")])
    op("get", f"{prefix}/{{bucketId}}/status", "Latest status of the bucket on each node", "stats", BEARER,
       responses(ok("BucketStatus"), AUTH, NOT_FOUND), [path("bucketId")])
    op("post", f"{prefix}/{{bucketId}}/stats", "Per-node uptime and latency of the bucket on one day", "stats", BEARER,
       responses(ok("BucketNodeStats"), COMMON, AUTH, NOT_FOUND), [path("bucketId")], body("DayRequest", required=False))

# Repositories and keys
op("get", "/repo", "Repositories", "repositories", BEARER, responses(ok("RepoList"), AUTH),
   [query("workspaceId", text(128), "only this workspace"), query("repoId", text(256), "only this repository")])
op("post", "/repo", "Create a repository", "repositories", BEARER, responses(ok("RepoWrite"), COMMON, AUTH, NOT_FOUND, {"409": error("Name taken.")}),
   request=body("RepoRequest"))
op("put", "/repo/{repoId}", "Update a repository", "repositories", BEARER,
   responses(ok("RepoWrite"), COMMON, AUTH, NOT_FOUND, {"409": error("Name taken.")}), [path("repoId")], body("RepoRequest"))
op("post", "/repo/validate", "Check a repository's mode and buckets against the rules, saving nothing", "repositories", BEARER,
   responses(ok("RepoWrite"), COMMON, AUTH, NOT_FOUND), request=body("RepoValidateRequest"))
op("post", "/repo/{repoId}/validate", "Check an update of a repository against the rules, saving nothing", "repositories", BEARER,
   responses(ok("RepoWrite"), COMMON, AUTH, NOT_FOUND), [path("repoId")], body("RepoValidateRequest"))
op("delete", "/repo/{repoId}", "Delete a repository and its keys", "repositories", BEARER, responses(ok("Action"), AUTH, NOT_FOUND), [path("repoId")])
op("get", "/repo/{repoId}/apikey", "The repository's storage API keys (no secrets)", "repositories", BEARER,
   responses(ok("APIKeyList"), AUTH, NOT_FOUND), [path("repoId")])
op("post", "/repo/{repoId}/apikey", "Create a storage API key (secret shown once)", "repositories", BEARER,
   responses(ok("APIKeyCreated"), COMMON, AUTH, NOT_FOUND), [path("repoId")], body("APIKeyRequest"))
op("put", "/repo/{repoId}/apikey/{apikeyId}", "Rename a key or change its access", "repositories", BEARER,
   responses(ok("Action"), COMMON, AUTH, NOT_FOUND), [path("repoId"), path("apikeyId")], body("APIKeyRequest"))
op("delete", "/repo/{repoId}/apikey/{apikeyId}", "Delete a key", "repositories", BEARER,
   responses(ok("Action"), AUTH, NOT_FOUND), [path("repoId"), path("apikeyId")])
op("get", "/repo/stats", "Traffic totals per repository", "stats", BEARER, responses(ok("RepoTotals"), COMMON, AUTH, NOT_FOUND),
   [query("repoId", LIST, "repositories")])

# Stats
RANGE = [query("startDate", ISO_DATE, "start (inclusive)"), query("endDate", ISO_DATE, "end; a date alone covers its day")]
BUCKETS = [query("bucketId", LIST, "buckets"), query("unitId", LIST, "legacy name of bucketId")]
for route, summary in (("/stats/daily", "Bucket traffic per day"), ("/stats/minute", "Bucket traffic per minute")):
    op("get", route, summary, "stats", BEARER, responses(ok("DataRows"), COMMON, AUTH, NOT_FOUND),
       RANGE + BUCKETS + [query("repoId", LIST, "repositories"), query("hosts", LIST, "hosts"), query("host", LIST, "legacy name of hosts")])
op("get", "/stats/nodes/minute", "Node status per minute", "stats", BEARER, responses(ok("DataRows"), COMMON, AUTH, NOT_FOUND), RANGE + BUCKETS)
op("get", "/stats/nodes/daily", "Node uptime per day", "stats", BEARER, responses(ok("DataRows"), COMMON, AUTH, NOT_FOUND),
   [query("startDate", DAY, "first day"), query("endDate", DAY, "last day")] + BUCKETS)

document = {
    "openapi": "3.1.0",
    "info": {
        "title": "Flashback Collector",
        "version": "1",
        "summary": "Bridge-node registry, storage catalog, metrics ingest and the Flashback stats API.",
        "description": "Every 4xx/5xx of the Flashback API is JSON {success:false, message} naming the parameter; "
                       "/write refusals are InfluxDB-style. Times from requests are bounded to 1970-01-01 … 2261-12-31. "
                       "Wire contract: flashback-api.md; threat model: docs/threat-model.md.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
    },
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "components": {
        "schemas": schemas,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "A user token (JWT: organization, role, workspaces) or a node token from /register."}},
    },
    "paths": dict(sorted(paths.items())),
}

text_out = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
with open(os.path.join(ROOT, "docs", "openapi.json"), "w") as f:
    f.write(text_out)
assert '"""#' not in text_out
with open(os.path.join(ROOT, "Sources", "CollectorHTTP", "OpenAPIDocument.swift"), "w") as f:
    f.write("// Generated by scripts/openapi.py; edit that script, not this file (docs/openapi.json is the same text).\n\n")
    f.write("/// The OpenAPI 3.1 document of the HTTP API, served at `GET /openapi.json`.\n")
    f.write("enum OpenAPIDocument {\n    static let json = #\"\"\"\n")
    f.write(text_out)
    f.write("\"\"\"#\n}\n")
print(f"{len(paths)} paths, {sum(len(v) for v in paths.values())} operations")

"""A Google OAuth2 token endpoint for tests: the JWT-bearer grant of a service account.

Usage: gcs_token_server.py PORT PUBLIC_KEY_PEM_FILE CLIENT_EMAIL LOG_FILE
POST /token with grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and assertion=<JWT>:
the assertion must be RS256-signed by the service account's key (verified with its public key,
`cryptography`), with iss = CLIENT_EMAIL, aud = this endpoint's URL, a devstorage scope and a
live exp. Answers {"access_token", "expires_in", "token_type"} or 400 {"error": "invalid_grant"}.
Every decision is appended to LOG_FILE as one JSON line.
"""
import base64
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

port, key_file, client_email, log_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with open(key_file, "rb") as handle:
    public_key = serialization.load_pem_public_key(handle.read())
audience = f"http://127.0.0.1:{port}/token"


def b64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check(assertion):
    header_b64, claims_b64, signature_b64 = assertion.split(".")
    header = json.loads(b64url(header_b64))
    claims = json.loads(b64url(claims_b64))
    if header.get("alg") != "RS256":
        return "alg is not RS256"
    try:
        public_key.verify(b64url(signature_b64), f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return "signature does not verify"
    if claims.get("iss") != client_email:
        return "iss is not the service account"
    if claims.get("aud") != audience:
        return "aud is not this endpoint"
    if "devstorage" not in claims.get("scope", ""):
        return "no devstorage scope"
    if not claims.get("iat", 0) <= time.time() + 300 < claims.get("exp", 0) + 300:
        return "expired or not yet valid"
    return None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        form = parse_qs(body)
        problem = "wrong grant_type"
        if form.get("grant_type") == ["urn:ietf:params:oauth:grant-type:jwt-bearer"] and form.get("assertion"):
            try:
                problem = check(form["assertion"][0])
            except Exception as error:  # malformed assertion
                problem = f"malformed assertion: {error}"
        token = "ya29.test-" + uuid.uuid4().hex
        with open(log_file, "a") as log:
            log.write(json.dumps({"path": self.path, "granted": problem is None, "problem": problem,
                                  "token": token if problem is None else None}) + "\n")
        if problem is None:
            answer, status = {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, 200
        else:
            answer, status = {"error": "invalid_grant", "error_description": problem}, 400
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()

"""Azure Storage Shared Key, as Microsoft's own Python SDK computes it, for tests.

No Azure Storage emulator installs from Debian or PyPI (Azurite is an npm package), so the
reference here is the signing policy of Microsoft's SDK, `azure-storage-blob`
(`SharedKeyCredentialPolicy`): the same code every Python client of Azure Blob Storage signs with.

Usage:
  azure_shared_key.py sign REQUESTS_FILE
      REQUESTS_FILE: a JSON list of {"method", "url", "headers": [[name, value], ...], "account", "key"}
      stdout: a JSON list of {"authorization"}: the Authorization header the SDK puts on each.
  azure_shared_key.py serve PORT ACCOUNT KEY CONTAINER LOG_FILE
      A Blob service endpoint for Get Container Properties (HEAD or GET /CONTAINER?restype=container,
      or path-style /ACCOUNT/CONTAINER): recomputes the Shared Key signature of each request with the
      SDK and answers 403 AuthenticationFailed when it differs (or x-ms-date is missing or more than
      15 minutes off, as Azure does), 404 ContainerNotFound for another container, else 200. Every
      decision is appended to LOG_FILE as one JSON line.
"""
import email.utils
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from azure.storage.blob._shared.authentication import SharedKeyCredentialPolicy


def sdk_authorization(method, url, headers, account, key):
    """The Authorization header the SDK's Shared Key policy adds to this request."""
    request = HttpRequest(method, url)
    for name, value in headers:
        request.headers[name] = value
    pipeline_request = PipelineRequest(request, PipelineContext(None))
    SharedKeyCredentialPolicy(account, key).on_request(pipeline_request)
    return request.headers["Authorization"]


def sign(requests_file):
    answers = []
    with open(requests_file) as handle:
        requests = json.load(handle)
    for item in requests:
        answers.append({"authorization": sdk_authorization(item["method"], item["url"], item["headers"], item["account"], item["key"])})
    json.dump(answers, sys.stdout)


def serve(port, account, key, container, log_file):
    def log(entry):
        with open(log_file, "a") as handle:
            handle.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, code=None):
            self.send_response(status)
            self.send_header("x-ms-request-id", "test")
            self.send_header("x-ms-version", self.headers.get("x-ms-version", ""))
            if code:
                self.send_header("x-ms-error-code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def handle_container(self):
            parsed = urlparse(self.path)
            segments = [segment for segment in parsed.path.split("/") if segment]
            if len(segments) == 2 and segments[0] == account:
                segments = segments[1:]  # path-style, as the emulators address an account
            received = self.headers.get("Authorization", "")
            headers = [(name, value) for name, value in self.headers.items() if name.lower() != "authorization"]
            expected = sdk_authorization(self.command, f"http://127.0.0.1:{port}{self.path}", headers, account, key)
            problem = None
            date = self.headers.get("x-ms-date")
            if not hmac.compare_digest(received.encode(), expected.encode()):
                problem = "signature does not match"
            elif not date:
                problem = "no x-ms-date"
            elif abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time()) > 15 * 60:
                problem = "x-ms-date is more than 15 minutes off"
            elif parse_qs(parsed.query).get("restype") != ["container"] or len(segments) != 1:
                problem = "not Get Container Properties"
            log({"method": self.command, "path": self.path, "problem": problem,
                 "found": problem is None and segments[0] == container})
            if problem == "not Get Container Properties":
                self.answer(400, "InvalidQueryParameterValue")
            elif problem:
                self.answer(403, "AuthenticationFailed")
            elif segments[0] != container:
                self.answer(404, "ContainerNotFound")
            else:
                self.answer(200)

        do_HEAD = handle_container
        do_GET = handle_container

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign(sys.argv[2])
    else:
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6])

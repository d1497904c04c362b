"""Signs an S3 request with botocore's SigV4 signer, as an app's SDK would.

Usage: sign_s3_request.py METHOD URL ACCESS_KEY_ID SECRET [REGION] [PAYLOAD]
Prints {"method", "path", "query", "headers": [[name, value], …]}: what a bridge node receives
and forwards to POST /apikey/authorize.
"""
import hashlib
import json
import sys
from urllib.parse import urlsplit

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

method, url, key_id, secret = sys.argv[1:5]
region = sys.argv[5] if len(sys.argv) > 5 else "us-east-1"
payload = sys.argv[6].encode() if len(sys.argv) > 6 else b""
request = AWSRequest(method=method, url=url, data=payload)
request.headers["x-amz-content-sha256"] = hashlib.sha256(payload).hexdigest()
S3SigV4Auth(Credentials(key_id, secret), "s3", region).add_auth(request)
parts = urlsplit(url)
headers = [[name, value] for name, value in request.headers.items()]
headers.append(["host", parts.netloc])
print(json.dumps({"method": method, "path": parts.path or "/", "query": parts.query, "headers": headers}))

"""Makes a presigned S3 URL with boto3's generate_presigned_url, as an app does for browser
uploads and shared links.

Usage: presign_s3_url.py METHOD URL ACCESS_KEY_ID SECRET EXPIRES [SIGNED_AT_UNIX] [REGION]
URL is path-style (http://host:port/bucket/key). SIGNED_AT_UNIX fixes the signing time (for
expiry tests); otherwise boto3 uses the clock. Prints {"method", "path", "query", "headers"}:
what a bridge node receives and forwards to POST /apikey/authorize (no Authorization header).
"""
import datetime
import json
import sys
from unittest import mock
from urllib.parse import unquote, urlsplit

import boto3
import botocore.auth
from botocore.config import Config

method, url, key_id, secret, expires = sys.argv[1:6]
signed_at = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[6] else None
region = sys.argv[7] if len(sys.argv) > 7 else "us-east-1"
parts = urlsplit(url)
bucket, _, key = unquote(parts.path).lstrip("/").partition("/")
client = boto3.client(
    "s3", endpoint_url=f"{parts.scheme}://{parts.netloc}", aws_access_key_id=key_id, aws_secret_access_key=secret,
    region_name=region, config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
operation = {"GET": "get_object", "PUT": "put_object", "DELETE": "delete_object", "HEAD": "head_object"}[method]
params = {"Bucket": bucket, "Key": key}
if signed_at is None:
    presigned = client.generate_presigned_url(operation, Params=params, ExpiresIn=int(expires), HttpMethod=method)
else:
    moment = datetime.datetime.fromtimestamp(signed_at, tz=datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=moment):
        presigned = client.generate_presigned_url(operation, Params=params, ExpiresIn=int(expires), HttpMethod=method)
signed = urlsplit(presigned)
print(json.dumps({"method": method, "path": signed.path or "/", "query": signed.query, "headers": [["host", signed.netloc]]}))

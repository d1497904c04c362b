"""Prepares a moto server for bucket-validation tests and turns its signature checking on.

Usage: moto_s3_setup.py ENDPOINT BUCKET
Creates an IAM user with an access key allowed s3:* and sts:AssumeRole, a role allowed s3:* (for delegated access),
creates BUCKET, then switches moto to
authenticated mode (/moto-api/reset-auth 0): from then on every request must be SigV4-signed with
a real key. Prints {"accessKeyId": …, "secretAccessKey": …, "roleArn": …} on stdout.
"""
import json
import sys
import urllib.request

import boto3

endpoint, bucket = sys.argv[1], sys.argv[2]
setup = dict(endpoint_url=endpoint, region_name="us-east-1",
             aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="setup" * 8)
iam = boto3.client("iam", **setup)
iam.create_user(UserName="collector")
key = iam.create_access_key(UserName="collector")["AccessKey"]
iam.put_user_policy(UserName="collector", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}],
}))
# A role for delegated access (role ARN + external id), which the collector assumes with its key.
role = iam.create_role(RoleName="flashback-delegated", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole",
                   "Condition": {"StringEquals": {"sts:ExternalId": "flashback-external-id"}}}],
}))["Role"]
iam.put_role_policy(RoleName="flashback-delegated", PolicyName="s3", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
}))
boto3.client("s3", **setup).create_bucket(Bucket=bucket)
# A raw body (not a form): moto reads the new count from the request data.
urllib.request.urlopen(urllib.request.Request(
    endpoint + "/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"})).read()
print(json.dumps({"accessKeyId": key["AccessKeyId"], "secretAccessKey": key["SecretAccessKey"], "roleArn": role["Arn"]}))

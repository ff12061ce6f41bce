"""Handlers that show the twin's behaviour from the inside: what event, environment and context they got."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import uuid
from typing import Any

import boto3

STARTED = time.time()


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = {
        "event": event,
        "env": dict(os.environ),
        "context": {"functionName": context.function_name, "memoryLimitInMB": context.memory_limit_in_mb,
                    "remainingMs": context.get_remaining_time_in_millis(), "requestId": context.aws_request_id},
        "pid": os.getpid(),
    }
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Echo": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": json.dumps(body)}


def fail(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise RuntimeError("boom")


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    time.sleep(30)
    return {"statusCode": 200, "body": "too late"}


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"}, "isBase64Encoded": True,
            "body": base64.b64encode(bytes(range(256))).decode()}


def malformed(event: dict[str, Any], context: Any) -> Any:
    return "not a proxy response"


def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("headers") or {}).get("Authorization") or ""
    if token.startswith("allow-"):
        effect, user = "Allow", token.removeprefix("allow-")
    elif token == "deny":
        effect, user = "Deny", "denied"
    else:
        raise Exception("Unauthorized")
    arn = event["methodArn"]
    api, stage = arn.split("/")[0], arn.split("/")[1]
    return {"principalId": user,
            "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": effect, "Action": "execute-api:Invoke", "Resource": f"{api}/{stage}/*/*"}]},
            "context": {"userId": user, "issuedAt": str(time.time_ns())}}


def record_s3(event: dict[str, Any], context: Any) -> None:
    """Store each received record under seen/ (outside the notification's filter); fail on poison keys."""
    s3 = boto3.client("s3")
    bucket = os.environ["BUCKET_NAME"]
    for record in event["Records"]:
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        if "poison" in key:
            s3.put_object(Bucket=bucket, Key=f"attempts/{key}/{uuid.uuid4().hex}", Body=b"")
            raise ValueError(f"cannot process {key}")
        s3.put_object(Bucket=bucket, Key=f"seen/{key}.json", Body=json.dumps(record).encode())


def nap(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Holds its execution environment for `seconds` (concurrency tests), answering with its pid."""
    time.sleep(float(event.get("seconds", 0.3)))
    return {"statusCode": 200, "body": json.dumps({"pid": os.getpid()})}

"""The events API Gateway sends a function: the Lambda proxy event (REST API, payload v1) and the REQUEST
authorizer event, both around the same `requestContext`.

The twin's gateway builds every event it delivers here, and so do the handler tests (`tests.support.events`), so
a test sees exactly the shape a function in the twin sees. Standard library only: handler tests import it.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any


def request_context(*, account_id: str, api_id: str, stage: str, resource: str, method: str, path: str,
                    request_id: str, source_ip: str, host: str, user_agent: str | None,
                    now: float | None = None) -> dict[str, Any]:
    """`requestContext` for a request to `path` (after the stage) matched by route `resource`."""
    now = time.time() if now is None else now
    return {
        "accountId": account_id, "apiId": api_id,
        "resourceId": hashlib.sha256(resource.encode()).hexdigest()[:6],
        "resourcePath": resource, "httpMethod": method,
        "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000), "path": f"/{stage}{path}",
        "protocol": "HTTP/1.1", "stage": stage, "domainName": host,
        "domainPrefix": api_id, "requestId": request_id,
        "identity": {
            "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
            "sourceIp": source_ip, "principalOrgId": None, "accessKey": None,
            "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
            "userAgent": user_agent, "user": None,
        },
    }


def _headers(header_items: Sequence[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in header_items:
        single[name] = value  # the last value wins, as in API Gateway's `headers`
        multi.setdefault(name, []).append(value)
    return single, multi


def proxy_event(*, method: str, path: str, resource: str, header_items: Sequence[tuple[str, str]],
                query: Mapping[str, Sequence[str]], path_parameters: Mapping[str, str], body: str | None,
                is_base64: bool, context: Mapping[str, Any],
                stage_variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A v1 proxy event. Empty headers, query and path parameters are `null`, as API Gateway sends them."""
    headers, multi_headers = _headers(header_items)
    return {
        "resource": resource, "path": path, "httpMethod": method,
        "headers": headers or None, "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": {k: list(v) for k, v in query.items()} or None,
        "pathParameters": dict(path_parameters) or None,
        "stageVariables": dict(stage_variables) if stage_variables else None,
        "requestContext": dict(context), "body": body, "isBase64Encoded": is_base64,
    }


def authorizer_event(*, method_arn: str, method: str, path: str, resource: str,
                     header_items: Sequence[tuple[str, str]], query: Mapping[str, Sequence[str]],
                     path_parameters: Mapping[str, str], context: Mapping[str, Any]) -> dict[str, Any]:
    """The event of a REQUEST authorizer (empty maps stay `{}` here, unlike the proxy event)."""
    headers, multi_headers = _headers(header_items)
    return {
        "type": "REQUEST", "methodArn": method_arn, "resource": resource, "path": path,
        "httpMethod": method, "headers": headers, "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in query.items()},
        "multiValueQueryStringParameters": {k: list(v) for k, v in query.items()},
        "pathParameters": dict(path_parameters), "stageVariables": {},
        "requestContext": dict(context),
    }

"""Gateway responses: the answers API Gateway gives itself (403 unknown route, 400 invalid body, 502, 504...),
shaped by the body's `x-amazon-apigateway-gateway-responses`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

# API Gateway's status for each gateway response type (when the body's response does not set one).
DEFAULT_STATUS = {
    "BAD_REQUEST_BODY": 400, "BAD_REQUEST_PARAMETERS": 400, "UNAUTHORIZED": 401, "ACCESS_DENIED": 403,
    "MISSING_AUTHENTICATION_TOKEN": 403, "RESOURCE_NOT_FOUND": 404, "REQUEST_TOO_LARGE": 413,
    "THROTTLED": 429, "AUTHORIZER_FAILURE": 500, "AUTHORIZER_CONFIGURATION_ERROR": 500,
    "API_CONFIGURATION_ERROR": 500, "INTEGRATION_FAILURE": 504, "INTEGRATION_TIMEOUT": 504,
}


class GatewayError(Exception):
    """An answer the gateway gives itself: a gateway response type, a message and (validation) details."""

    def __init__(self, response_type: str, message: str, *, validation: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.response_type = response_type
        self.message = message
        self.validation = validation or message
        self.status = status


def parameter_value(value: str, request_headers: Mapping[str, str]) -> str:
    """A mapping value: a quoted literal `'x'`, or `method.request.header.X` from the request."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if value.startswith("method.request.header."):
        return request_headers.get(value.removeprefix("method.request.header.").lower(), "")
    return value


def gateway_response(body: Mapping[str, Any], err: GatewayError, context: Mapping[str, str],
                     request_headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the gateway response for `err`, from the REST API `body`."""
    responses = body.get("x-amazon-apigateway-gateway-responses") or {}
    status = err.status or DEFAULT_STATUS.get(err.response_type, 500)
    spec = responses.get(err.response_type) or responses.get("DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
    headers = {"Content-Type": "application/json"}
    if spec is None:
        return status, headers, json.dumps({"message": err.message}).encode()
    if spec.get("statusCode"):
        status = int(spec["statusCode"])
    values = {
        "context.error.message": json.dumps(err.message)[1:-1],
        "context.error.messageString": json.dumps(err.message),
        "context.error.validationErrorString": json.dumps(err.validation)[1:-1],
        "context.error.responseType": err.response_type,
        **context,
    }

    def substitute(text: str) -> str:
        return re.sub(r"\$(context(?:\.[A-Za-z0-9_]+)+)", lambda m: values.get(m[1], ""), text)

    for key, value in (spec.get("responseParameters") or {}).items():
        if key.startswith("gatewayresponse.header."):
            headers[key.removeprefix("gatewayresponse.header.")] = parameter_value(value, request_headers)
    template = (spec.get("responseTemplates") or {}).get("application/json")
    text = substitute(template) if template is not None else json.dumps({"message": err.message})
    return status, headers, text.encode()

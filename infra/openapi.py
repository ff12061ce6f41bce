"""The OpenAPI document (infra/openapi.yaml) and its rendering into an API Gateway REST API body.

Pure functions: no Pulumi, no AWS calls. `render()` takes the document and each function's invoke ARN and adds
what API Gateway needs: a Lambda proxy integration per operation, CORS preflight (OPTIONS) per path, request
validators, and gateway responses that keep the project's JSON error envelope and CORS headers on errors the
gateway itself answers (validation failures, throttling, auth).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_PATH = Path(__file__).with_name("openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
CORS_ALLOW_HEADERS = "Content-Type,Authorization,Idempotency-Key,X-Amz-Date,X-Api-Key,X-Amz-Security-Token"
CORS_ALLOW_ORIGIN = "*"
AUTHORIZER_NAME = "jwt"


@cache
def _load() -> dict[str, Any]:
    with open(SPEC_PATH, encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh))


def load_spec() -> dict[str, Any]:
    """A fresh copy of the document (callers may mutate it)."""
    return copy.deepcopy(_load())


def operations(spec: dict[str, Any] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, METHOD, operation) for every operation, in document order."""
    spec = spec if spec is not None else _load()
    found = []
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                found.append((path, method.upper(), item[method]))
    return found


def function_names(spec: dict[str, Any] | None = None) -> list[str]:
    """Every function the document routes to (`x-function`), each once, in document order."""
    names: list[str] = []
    for _, _, op in operations(spec):
        if op["x-function"] not in names:
            names.append(op["x-function"])
    return names


def _cors_options(methods: list[str]) -> dict[str, Any]:
    allow = ",".join(sorted({*methods, "OPTIONS"}))
    header = "method.response.header.Access-Control-Allow-"
    return {
        "summary": "CORS preflight.",
        "responses": {"200": {"description": "CORS preflight answer.", "headers": {
            f"Access-Control-Allow-{h}": {"schema": {"type": "string"}} for h in ("Origin", "Methods", "Headers")}}},
        "x-amazon-apigateway-integration": {
            "type": "mock",
            "requestTemplates": {"application/json": '{"statusCode": 200}'},
            "responses": {"default": {"statusCode": "200", "responseParameters": {
                f"{header}Origin": f"'{CORS_ALLOW_ORIGIN}'",
                f"{header}Methods": f"'{allow}'",
                f"{header}Headers": f"'{CORS_ALLOW_HEADERS}'",
            }}},
        },
    }


def _gateway_responses() -> dict[str, Any]:
    # Errors API Gateway answers itself (bad body, throttled, unauthorized) keep the JSON envelope and CORS.
    cors = {
        "gatewayresponse.header.Access-Control-Allow-Origin": f"'{CORS_ALLOW_ORIGIN}'",
        "gatewayresponse.header.Access-Control-Allow-Headers": f"'{CORS_ALLOW_HEADERS}'",
    }
    def envelope(code: str, message: str) -> dict[str, Any]:
        return {"responseParameters": cors, "responseTemplates": {
            "application/json": '{"error": {"code": "' + code + '", "message": ' + message + "}}"}}

    return {
        "BAD_REQUEST_BODY": envelope("VALIDATION_ERROR", '"$context.error.validationErrorString"'),
        "BAD_REQUEST_PARAMETERS": envelope("VALIDATION_ERROR", '"$context.error.validationErrorString"'),
        "UNAUTHORIZED": envelope("UNAUTHORIZED", "$context.error.messageString"),
        "ACCESS_DENIED": envelope("FORBIDDEN", "$context.error.messageString"),
        "THROTTLED": envelope("THROTTLED", "$context.error.messageString"),
        "DEFAULT_4XX": envelope("BAD_REQUEST", "$context.error.messageString"),
        "DEFAULT_5XX": envelope("INTERNAL", "$context.error.messageString"),
    }


def render(
    spec: dict[str, Any],
    invoke_arns: dict[str, str],
    *,
    title: str,
    authorizer_uri: str | None = None,
    authorizer_cache_seconds: int = 300,
) -> dict[str, Any]:
    """The REST API body: `spec` plus integrations for `invoke_arns` (function name -> Lambda invoke ARN)."""
    body = copy.deepcopy(spec)
    body["info"]["title"] = title
    missing = sorted(set(function_names(spec)) - set(invoke_arns))
    if missing:
        raise ValueError(f"the OpenAPI document routes to functions that were not given: {missing}")
    secured = False
    for item in body["paths"].values():
        methods = [m.upper() for m in HTTP_METHODS if m in item]
        for method in HTTP_METHODS:
            op = item.get(method)
            if op is None:
                continue
            op["x-amazon-apigateway-integration"] = {
                "type": "aws_proxy",
                "httpMethod": "POST",  # Lambda is always invoked with POST, whatever the client's method
                "uri": invoke_arns[op["x-function"]],
                "passthroughBehavior": "when_no_match",
                "timeoutInMillis": 29000,
            }
            secured = secured or bool(op.get("security"))
        item["options"] = _cors_options(methods)
    body["x-amazon-apigateway-request-validators"] = {
        "all": {"validateRequestBody": True, "validateRequestParameters": True},
    }
    body["x-amazon-apigateway-request-validator"] = "all"
    body["x-amazon-apigateway-gateway-responses"] = _gateway_responses()
    if secured:
        if authorizer_uri is None:
            raise ValueError("operations declare security but no authorizer was given")
        schemes = body.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes[AUTHORIZER_NAME] = {
            "type": "apiKey", "name": "Authorization", "in": "header",
            "x-amazon-apigateway-authtype": "custom",
            "x-amazon-apigateway-authorizer": {
                "type": "request",
                "identitySource": "method.request.header.Authorization",
                "authorizerUri": authorizer_uri,
                "authorizerResultTtlInSeconds": authorizer_cache_seconds,
            },
        }
    return body

"""The REST API as its OpenAPI body declares it: routes (template, method, operation), each one's validators and
security, the gateway responses, and where the graph holds the body (`find_rest_api`)."""

from __future__ import annotations

import copy
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from infra.openapi import HTTP_METHODS  # the document's methods, defined once
from local.gateway.responses import GatewayError, gateway_response
from sim.account import ACCOUNT_ID
from sim.capture import Graph, Resource

REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
TYPES = (REST_API, STAGE)


def deref(node: Any, root: Mapping[str, Any], depth: int = 0) -> Any:
    """`node` with every local `$ref` (`#/components/...`) replaced by its target."""
    if depth > 50:
        raise ValueError("$ref nesting too deep (a cycle?)")
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str) and node["$ref"].startswith("#/"):
            target: Any = root
            for part in node["$ref"][2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return deref(target, root, depth + 1)
        return {k: deref(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(v, root, depth + 1) for v in node]
    return node


@dataclass
class Route:
    template: str
    method: str
    regex: re.Pattern[str]
    operation: dict[str, Any]
    parameters: list[dict[str, Any]]
    body_validator: jsonschema.protocols.Validator | None
    body_required: bool
    validate_body: bool
    validate_params: bool
    security: list[dict[str, Any]] | None

    @property
    def integration(self) -> dict[str, Any]:
        return dict(self.operation.get("x-amazon-apigateway-integration") or {})


def template_regex(template: str) -> re.Pattern[str]:
    parts = []
    for segment in template.strip("/").split("/"):
        if not segment:
            continue
        m = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
        if m:
            parts.append(f"(?P<{m[1]}>.+)" if m[2] else f"(?P<{m[1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("^/" + "/".join(parts) + "/?$" if parts else "^/$")


@dataclass
class RestApi:
    """The routes, validators, gateway responses and authorizers of one REST API body."""

    body: dict[str, Any]
    api_id: str
    stage: str
    region: str
    routes: list[Route] = field(default_factory=list)

    @classmethod
    def from_body(cls, body: dict[str, Any], *, api_id: str, stage: str, region: str) -> RestApi:
        api = cls(body=body, api_id=api_id, stage=stage, region=region)
        validators = body.get("x-amazon-apigateway-request-validators") or {}
        default_validator = body.get("x-amazon-apigateway-request-validator")
        for template, item in (body.get("paths") or {}).items():
            shared = [deref(p, body) for p in item.get("parameters") or []]
            for method in HTTP_METHODS:
                op = item.get(method)
                if op is None:
                    continue
                own = [deref(p, body) for p in op.get("parameters") or []]
                params = {(p["in"], p["name"]): p for p in [*shared, *own]}
                chosen = validators.get(op.get("x-amazon-apigateway-request-validator", default_validator)) or {}
                request_body = deref(op.get("requestBody") or {}, body)
                schema = ((request_body.get("content") or {}).get("application/json") or {}).get("schema")
                api.routes.append(Route(
                    template=template, method=method.upper(), regex=template_regex(template), operation=op,
                    parameters=list(params.values()),
                    body_validator=jsonschema.Draft4Validator(schema) if schema else None,
                    body_required=bool(request_body.get("required")),
                    validate_body=bool(chosen.get("validateRequestBody")),
                    validate_params=bool(chosen.get("validateRequestParameters")),
                    security=op.get("security", body.get("security")),
                ))
        # Literal segments win over templates, as in API Gateway.
        api.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        return api

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            # fullmatch: `$` would also match before a final newline (/todos/%0A is GET /todos/{id}).
            found = route.regex.fullmatch(path)
            if found and route.method == method:
                return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None

    def gateway_response(self, err: GatewayError, context: Mapping[str, str],
                         request_headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        return gateway_response(self.body, err, context, request_headers)

    def authorizer(self, route: Route) -> tuple[str, dict[str, Any]] | None:
        schemes = ((self.body.get("components") or {}).get("securitySchemes")) or {}
        for requirement in route.security or []:
            for name in requirement:
                scheme = schemes.get(name) or {}
                if "x-amazon-apigateway-authorizer" in scheme:
                    return name, dict(scheme["x-amazon-apigateway-authorizer"])
        return None

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{self.region}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/{method}{path}"

    def binary_media_types(self) -> list[str]:
        return [str(m) for m in self.body.get("x-amazon-apigateway-binary-media-types") or []]


def find_rest_api(graph: Graph) -> tuple[Resource, Resource, dict[str, Any]] | None:
    apis = graph.of_type(REST_API)
    if not apis:
        return None
    if len(apis) > 1:
        raise NotImplementedError("the twin serves one REST API; the graph has " + str(len(apis)))
    api = apis[0]
    stages = [s for s in graph.of_type(STAGE) if s.inputs.get("restApi") == api.id]
    if len(stages) != 1:
        raise ValueError(f"REST API {api.name}: expected one stage, found {[s.name for s in stages]}")
    body = api.inputs.get("body")
    if not body:
        raise ValueError(f"REST API {api.name} has no OpenAPI body; the twin serves body-defined APIs")
    return api, stages[0], copy.deepcopy(json.loads(body) if isinstance(body, str) else body)

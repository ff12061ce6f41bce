"""The API Gateway engine: a REST API (payload v1) served on 127.0.0.1 from the REST API body in the graph.

Everything comes from the body Pulumi deploys (`infra.openapi.render` output): routes (path template + method),
each operation's `x-amazon-apigateway-integration` (`aws_proxy` to a function's invoke ARN, or `mock` for the
CORS preflight), the request validators (`x-amazon-apigateway-request-validators`), the gateway responses that
shape the errors the gateway answers itself, and REQUEST authorizers (`x-amazon-apigateway-authorizer`).

Like API Gateway, the gateway validates the body against the operation's JSON schema (draft 4) and checks that
required parameters are present; with `strict_parameters` it also checks query and path values against their
schemas (API Gateway does not, so the functions must). A function error answers 502, a run past the timeout
504, an unknown route 403 `Missing Authentication Token`, each through the body's gateway responses.
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import hashlib
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema

from local.lambdas import InvokeResult, LambdaEngine
from local.processes import LOOPBACK, LogSink
from sim.account import ACCOUNT_ID
from sim.capture import Graph, Resource

REST_API = "aws:apigateway/restApi:RestApi"
STAGE = "aws:apigateway/stage:Stage"
TYPES = (REST_API, STAGE)
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0

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


# --- schemas ---------------------------------------------------------------------------------------------------

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


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}.get(type(value), "unknown")


def aws_message(err: jsonschema.ValidationError) -> str:
    """One validation error phrased as API Gateway's validator (java json-schema-validator) phrases it."""
    v, inst, val = err.validator, err.instance, err.validator_value
    if v == "required":
        missing = [p for p in val if isinstance(inst, dict) and p not in inst]
        text = f"object has missing required properties ({_json(missing)})"
    elif v == "additionalProperties":
        allowed = set((err.schema.get("properties") or {}).keys())
        extra = sorted(k for k in inst if k not in allowed) if isinstance(inst, dict) else []
        text = f"object instance has properties which are not allowed by the schema: {_json(extra)}"
    elif v == "minLength":
        text = f"string {_json(inst)} is too short (length: {len(inst)}, required minimum: {val})"
    elif v == "maxLength":
        text = f"string {_json(inst)} is too long (length: {len(inst)}, maximum allowed: {val})"
    elif v == "pattern":
        text = f"ECMA 262 regex {_json(val)} does not match input string {_json(inst)}"
    elif v == "type":
        kinds = val if isinstance(val, list) else [val]
        text = (f"instance type ({_type_name(inst)}) does not match any allowed primitive type "
                f"(allowed: {_json(kinds)})")
    elif v == "minProperties":
        text = f"object has too few properties (found {len(inst)} but schema requires at least {val})"
    elif v == "maxProperties":
        text = f"object has too many properties (found {len(inst)} but schema requires at most {val})"
    elif v == "minimum":
        text = f"numeric instance is lower than the required minimum (minimum: {val}, found: {inst})"
    elif v == "maximum":
        text = f"numeric instance is greater than the required maximum (maximum: {val}, found: {inst})"
    elif v == "enum":
        text = f"instance value ({_json(inst)}) not found in enum (possible values: {_json(val)})"
    else:
        text = err.message
    where = "/" + "/".join(str(p) for p in err.absolute_path)
    return text if where == "/" else f"{text} at {where}"


def validation_string(validator: jsonschema.protocols.Validator, instance: Any) -> str | None:
    errors = sorted(validator.iter_errors(instance), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if not errors:
        return None
    return "[" + ", ".join(aws_message(e) for e in errors) + "]"


def _coerce(value: str, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    except ValueError:
        return value
    return value


# --- the API as the body declares it ----------------------------------------------------------------------------

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


def _template_regex(template: str) -> re.Pattern[str]:
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
                    template=template, method=method.upper(), regex=_template_regex(template), operation=op,
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
            found = route.regex.match(path)
            if found and route.method == method:
                return route, {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
        return None

    def gateway_response(self, err: GatewayError, context: Mapping[str, str],
                         request_headers: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        responses = self.body.get("x-amazon-apigateway-gateway-responses") or {}
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
                headers[key.removeprefix("gatewayresponse.header.")] = _parameter_value(value, request_headers)
        template = (spec.get("responseTemplates") or {}).get("application/json")
        body = substitute(template) if template is not None else json.dumps({"message": err.message})
        return status, headers, body.encode()

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


def _parameter_value(value: str, request_headers: Mapping[str, str]) -> str:
    """A mapping value: a quoted literal `'x'`, or `method.request.header.X` from the request."""
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if value.startswith("method.request.header."):
        return request_headers.get(value.removeprefix("method.request.header.").lower(), "")
    return value


# --- requests ---------------------------------------------------------------------------------------------------

@dataclass
class Request:
    method: str
    path: str                                  # after the stage, decoded
    raw_query: str
    header_items: list[tuple[str, str]]
    body: bytes
    source_ip: str

    @property
    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.header_items:
            out[k] = v
        return out

    @property
    def lower_headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.header_items}

    def multi_headers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.header_items:
            out.setdefault(k, []).append(v)
        return out

    def query(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in urllib.parse.parse_qsl(self.raw_query, keep_blank_values=True):
            out.setdefault(k, []).append(v)
        return out


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class _CachedPolicy:
    expires: float
    policy: dict[str, Any]
    principal_id: Any
    context: dict[str, Any]


class Gateway:
    """Answers requests for one REST API stage by invoking the graph's functions."""

    def __init__(self, api: RestApi, lambdas: LambdaEngine, sink: LogSink, *, strict_parameters: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.lambdas = lambdas
        self.sink = sink
        self.strict_parameters = strict_parameters
        self.clock = clock
        self._auth_cache: dict[tuple[str, tuple[str, ...]], _CachedPolicy] = {}
        self._auth_lock = threading.Lock()
        self.authorizer_invocations = 0

    # The whole request path: route, authorize, validate, integrate, map the response.
    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        ctx = {"context.requestId": request_id, "context.stage": self.api.stage}
        try:
            response = self._handle(request, request_id)
        except GatewayError as err:
            status, headers, body = self.api.gateway_response(err, ctx, request.lower_headers)
            response = Response(status, list(headers.items()), body)
        response.headers.append(("x-amzn-RequestId", request_id))
        self.sink.write("gateway", f'{request.source_ip} "{request.method} /{self.api.stage}{request.path}" '
                                   f"{response.status} {len(response.body)} {request_id}")
        return response

    def _handle(self, request: Request, request_id: str) -> Response:
        if len(request.body) > MAX_PAYLOAD_BYTES:
            raise GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
        found = self.api.match(request.method, request.path)
        if found is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        route, path_params = found
        integration = route.integration
        if integration.get("type") == "mock":
            return self._mock(integration, request)
        authorizer_context = self._authorize(route, request, path_params)
        self._validate(route, request, path_params)
        if integration.get("type") != "aws_proxy":
            raise GatewayError("API_CONFIGURATION_ERROR", f"integration type {integration.get('type')!r} is not "
                                                          "served by the twin (aws_proxy and mock are)")
        function = self.lambdas.find(str(integration.get("uri")))
        event = self._proxy_event(route, request, path_params, request_id, authorizer_context)
        timeout = min(INTEGRATION_TIMEOUT_SECONDS, float(integration.get("timeoutInMillis", 29000)) / 1000)
        return self._map_response(function.invoke(event, timeout=timeout))

    def _mock(self, integration: Mapping[str, Any], request: Request) -> Response:
        default = (integration.get("responses") or {}).get("default") or {}
        headers = [(k.removeprefix("method.response.header."), _parameter_value(v, request.lower_headers))
                   for k, v in (default.get("responseParameters") or {}).items()
                   if k.startswith("method.response.header.")]
        template = (default.get("responseTemplates") or {}).get("application/json", "")
        headers.append(("Content-Type", "application/json"))
        return Response(int(default.get("statusCode", 200)), headers, template.encode())

    # --- validation (API Gateway's request validators) ----------------------------------------------------------
    def _validate(self, route: Route, request: Request, path_params: Mapping[str, str]) -> None:
        if route.validate_params:
            query, headers = request.query(), request.lower_headers
            missing, invalid = [], []
            for param in route.parameters:
                where, name = param["in"], param["name"]
                if where == "query":
                    values = query.get(name)
                    value = values[-1] if values else None
                elif where == "header":
                    value = headers.get(name.lower())
                elif where == "path":
                    value = path_params.get(name)
                else:
                    continue
                if value in (None, "") and param.get("required"):
                    missing.append(name)
                elif value is not None and self.strict_parameters and param.get("schema"):
                    schema = param["schema"]
                    validator = jsonschema.Draft4Validator(schema)
                    problem = validation_string(validator, _coerce(value, schema))
                    if problem:
                        invalid.append(f"{where} parameter {name}: {problem}")
            if missing:
                text = f"Missing required request parameters: [{', '.join(missing)}]"
                raise GatewayError("BAD_REQUEST_PARAMETERS", text, validation=text)
            if invalid:
                raise GatewayError("BAD_REQUEST_PARAMETERS", "Invalid request parameters",
                                   validation="; ".join(invalid))
        # API Gateway picks the model by Content-Type (none sent: application/json); other types pass through.
        content_type = (request.lower_headers.get("content-type") or "application/json").split(";")[0].strip()
        if route.validate_body and route.body_validator is not None and content_type.lower() == "application/json":
            if not request.body.strip():
                if route.body_required:
                    raise GatewayError("BAD_REQUEST_BODY", "Invalid request body",
                                       validation="[Request body is required]")
                return
            try:
                document = json.loads(request.body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise GatewayError("BAD_REQUEST_BODY", "Invalid request body",
                                   validation=f"[Invalid JSON: {exc}]") from None
            problem = validation_string(route.body_validator, document)
            if problem:
                raise GatewayError("BAD_REQUEST_BODY", "Invalid request body", validation=problem)

    # --- REQUEST authorizers ------------------------------------------------------------------------------------
    def _authorize(self, route: Route, request: Request, path_params: Mapping[str, str]) -> dict[str, Any] | None:
        found = self.api.authorizer(route)
        if found is None:
            return None
        name, spec = found
        headers, query = request.lower_headers, request.query()
        identity: list[str] = []
        for source in str(spec.get("identitySource") or "").split(","):
            source = source.strip()
            if source.startswith("method.request.header."):
                value = headers.get(source.removeprefix("method.request.header.").lower())
            elif source.startswith("method.request.querystring."):
                values = query.get(source.removeprefix("method.request.querystring."))
                value = values[-1] if values else None
            else:
                continue
            if not value:
                raise GatewayError("UNAUTHORIZED", "Unauthorized")  # no identity: the authorizer is not called
            identity.append(value)
        key = (name, tuple(identity))
        ttl = float(spec.get("authorizerResultTtlInSeconds", 300))
        method_arn = self.api.method_arn(request.method, request.path)
        with self._auth_lock:
            cached = self._auth_cache.get(key)
        if cached is None or cached.expires <= self.clock():
            cached = self._invoke_authorizer(spec, route, request, path_params, method_arn)
            if ttl > 0:
                cached.expires = self.clock() + ttl
                with self._auth_lock:
                    self._auth_cache[key] = cached
        if not _allows(cached.policy, method_arn):
            raise GatewayError("ACCESS_DENIED", "User is not authorized to access this resource")
        return {**cached.context, "principalId": cached.principal_id}

    def _invoke_authorizer(self, spec: Mapping[str, Any], route: Route, request: Request,
                           path_params: Mapping[str, str], method_arn: str) -> _CachedPolicy:
        function = self.lambdas.find(str(spec.get("authorizerUri")))
        query = request.query()
        event = {
            "type": "REQUEST", "methodArn": method_arn, "resource": route.template, "path": request.path,
            "httpMethod": request.method, "headers": request.headers, "multiValueHeaders": request.multi_headers(),
            "queryStringParameters": {k: v[-1] for k, v in query.items()},
            "multiValueQueryStringParameters": query, "pathParameters": dict(path_params), "stageVariables": {},
            "requestContext": self._request_context(route, request, str(uuid.uuid4())),
        }
        self.authorizer_invocations += 1
        result = function.invoke(event, timeout=30)
        if not result.ok:
            if (result.error or {}).get("errorMessage") == "Unauthorized":
                raise GatewayError("UNAUTHORIZED", "Unauthorized")
            raise GatewayError("AUTHORIZER_FAILURE", "Internal server error" if not result.timed_out
                               else "Authorizer timed out")
        payload = result.payload if isinstance(result.payload, dict) else {}
        policy = payload.get("policyDocument")
        if not isinstance(policy, dict) or "principalId" not in payload:
            raise GatewayError("AUTHORIZER_CONFIGURATION_ERROR", "Internal server error")
        context = {k: v for k, v in (payload.get("context") or {}).items() if isinstance(v, str | int | float | bool)}
        return _CachedPolicy(0.0, policy, payload["principalId"], context)

    # --- Lambda proxy integration (payload v1) ------------------------------------------------------------------
    def _request_context(self, route: Route, request: Request, request_id: str) -> dict[str, Any]:
        now = time.time()
        headers = request.lower_headers
        return {
            "accountId": ACCOUNT_ID, "apiId": self.api.api_id,
            "resourceId": hashlib.sha256(route.template.encode()).hexdigest()[:6],
            "resourcePath": route.template, "httpMethod": request.method,
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000), "path": f"/{self.api.stage}{request.path}",
            "protocol": "HTTP/1.1", "stage": self.api.stage, "domainName": headers.get("host", LOOPBACK),
            "domainPrefix": self.api.api_id, "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None, "accountId": None, "cognitoIdentityId": None, "caller": None,
                "sourceIp": request.source_ip, "principalOrgId": None, "accessKey": None,
                "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "userArn": None,
                "userAgent": headers.get("user-agent"), "user": None,
            },
        }

    def _is_binary(self, request: Request) -> bool:
        media = [str(m) for m in self.api.body.get("x-amazon-apigateway-binary-media-types") or []]
        content_type = request.lower_headers.get("content-type", "").split(";")[0].strip()
        if any(fnmatch.fnmatchcase(content_type, m) for m in media):
            return True
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError:
            return True
        return False

    def _proxy_event(self, route: Route, request: Request, path_params: Mapping[str, str], request_id: str,
                     authorizer: dict[str, Any] | None) -> dict[str, Any]:
        query = request.query()
        binary = bool(request.body) and self._is_binary(request)
        if not request.body:
            body = None
        elif binary:
            body = base64.b64encode(request.body).decode()
        else:
            body = request.body.decode("utf-8")
        context = self._request_context(route, request, request_id)
        if authorizer is not None:
            context["authorizer"] = authorizer
        return {
            "resource": route.template, "path": request.path, "httpMethod": request.method,
            "headers": request.headers or None, "multiValueHeaders": request.multi_headers() or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": dict(path_params) or None, "stageVariables": None,
            "requestContext": context, "body": body, "isBase64Encoded": binary,
        }

    def _map_response(self, result: InvokeResult) -> Response:
        if result.timed_out:
            raise GatewayError("INTEGRATION_TIMEOUT", "Endpoint request timed out", status=504)
        if not result.ok:
            self.sink.write("gateway", f"function error {result.request_id}: {result.error}")
            raise GatewayError("DEFAULT_5XX", "Internal server error", status=502)
        payload = result.payload
        try:
            if not isinstance(payload, dict):
                raise ValueError("not an object")
            status = int(payload["statusCode"])
            if not 100 <= status <= 599:
                raise ValueError(f"statusCode {status}")
            headers: list[tuple[str, str]] = []
            multi = payload.get("multiValueHeaders") or {}
            for name, values in multi.items():
                headers += [(name, str(v)) for v in values]
            seen = {(n.lower(), v) for n, v in headers}
            for name, value in (payload.get("headers") or {}).items():
                if (name.lower(), str(value)) not in seen:
                    headers.append((name, str(value)))
            raw = payload.get("body")
            if raw is None:
                body = b""
            elif payload.get("isBase64Encoded"):
                body = base64.b64decode(str(raw))
            else:
                body = str(raw).encode()
        except (KeyError, ValueError, TypeError) as exc:
            self.sink.write("gateway", f"malformed Lambda proxy response {result.request_id}: {exc}")
            raise GatewayError("DEFAULT_5XX", "Internal server error", status=502) from None
        if not any(n.lower() == "content-type" for n, _ in headers):
            headers.append(("Content-Type", "application/json"))
        return Response(status, headers, body)


def _allows(policy: Mapping[str, Any], method_arn: str) -> bool:
    """IAM evaluation of an authorizer policy for `execute-api:Invoke` on `method_arn`: a Deny wins."""
    allowed = False
    statements = policy.get("Statement") or []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        resources = st.get("Resource") or []
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


# --- the HTTP server --------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, a keep-alive client's delayed ACK adds ~40 ms.
    disable_nagle_algorithm = True
    server: GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        body = self._read_body()
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        stage_prefix = f"/{self.server.gateway.api.stage}"
        gateway = self.server.gateway
        request = Request(method=self.command, path=path.removeprefix(stage_prefix) or "/",
                          raw_query=split.query, header_items=list(self.headers.items()), body=body,
                          source_ip=self.client_address[0])
        if path != stage_prefix and not path.startswith(stage_prefix + "/"):
            err = GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
            status, headers, payload = gateway.api.gateway_response(err, {}, request.lower_headers)
            response = Response(status, list(headers.items()), payload)
        else:
            try:
                response = gateway.handle(request)
            except Exception as exc:  # a bug in the twin itself: answer like API Gateway's internal error
                gateway.sink.write("gateway", f"internal error: {exc!r}")
                response = Response(500, [("Content-Type", "application/json")],
                                    b'{"message": "Internal server error"}')
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its own timeout); nothing to answer

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _serve


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of concurrent clients got connection resets.
    request_queue_size = 256

    def __init__(self, gateway: Gateway, port: int = 0) -> None:
        self.gateway = gateway
        super().__init__((LOOPBACK, port), _Handler)


class GatewayEngine:
    """Serves the graph's REST API (one stage) on 127.0.0.1."""

    name = "gateway"

    def __init__(self, sink: LogSink, lambdas: LambdaEngine, *, port: int = 0, strict_parameters: bool = False) -> None:
        self.sink = sink
        self.lambdas = lambdas
        self.port = port
        self.strict_parameters = strict_parameters
        self.server: GatewayServer | None = None
        self.gateway: Gateway | None = None
        self.thread: threading.Thread | None = None
        self.stage: Resource | None = None

    @staticmethod
    def rest_api(graph: Graph) -> tuple[Resource, Resource, dict[str, Any]] | None:
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

    def deploy(self, graph: Graph) -> None:
        found = self.rest_api(graph)
        if found is None:
            return
        api_res, stage, body = found
        self.stage = stage
        api = RestApi.from_body(body, api_id=api_res.id, stage=str(stage.inputs["stageName"]), region=graph.region)
        for route in api.routes:
            integration = route.integration
            if integration.get("type") == "aws_proxy":
                self.lambdas.find(str(integration.get("uri")))  # fails the deploy when no function matches
            found_auth = api.authorizer(route)
            if found_auth:
                self.lambdas.find(str(found_auth[1].get("authorizerUri")))
        self.gateway = Gateway(api, self.lambdas, self.sink, strict_parameters=self.strict_parameters)
        self.server = GatewayServer(self.gateway, self.port)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str | None:
        if self.gateway is None:
            return None
        return f"http://{LOOPBACK}:{self.port}/{self.gateway.api.stage}"

    def translations(self) -> dict[str, str]:
        if self.stage is None or self.url is None:
            return {}
        return {str(self.stage.outputs.get("invokeUrl")): self.url}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

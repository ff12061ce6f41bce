"""The gateway's request path for one REST API stage: route, authorize, validate, integrate (Lambda proxy or
mock), map the function's answer. A function error answers 502, a run past the timeout 504, an unknown route 403
`Missing Authentication Token`, each through the body's gateway responses."""

from __future__ import annotations

import base64
import fnmatch
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from local.facts import Functions
from local.function_spec import InvokeResult
from local.gateway.authorizer import Authorizers
from local.gateway.events import proxy_event
from local.gateway.messages import Request, Response, request_context_for
from local.gateway.responses import GatewayError, parameter_value
from local.gateway.spec import RestApi, Route
from local.gateway.throttle import StageThrottle
from local.gateway.validation import validate_request
from local.processes import LogSink

if TYPE_CHECKING:
    from local.gateway.tracing import GatewayTracer

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0


class Gateway:
    """Answers requests for one REST API stage by invoking the graph's functions."""

    def __init__(self, api: RestApi, lambdas: Functions, sink: LogSink, *, strict_parameters: bool = False,
                 clock: Callable[[], float] = time.monotonic, throttle: StageThrottle | None = None,
                 tracer: GatewayTracer | None = None) -> None:
        self.api = api
        self.tracer = tracer
        """The gateway's spans (None: not traced, e.g. the unit tests' gateway)."""
        self.throttle = throttle if throttle is not None else StageThrottle({}, clock=clock)
        self.lambdas = lambdas
        self.sink = sink
        self.strict_parameters = strict_parameters
        self.authorizers = Authorizers(api, lambdas, clock=clock)

    # The whole request path: route, authorize, validate, integrate, map the response.
    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if self.tracer is None:
            response = self._answer(request, request_id)
        else:
            found = self.api.match(request.method, request.path)
            with self.tracer.request(request, found[0].template if found else request.path) as (traced, span):
                span.set_attribute("aws.request_id", request_id)
                response = self._answer(traced, request_id)
                self.tracer.finish(span, response.status)
        self.sink.write("gateway", f'{request.source_ip} "{request.method} /{self.api.stage}{request.path}" '
                                   f"{response.status} {len(response.body)} {request_id}")
        return response

    def _answer(self, request: Request, request_id: str) -> Response:
        ctx = {"context.requestId": request_id, "context.stage": self.api.stage}
        try:
            response = self._handle(request, request_id)
        except GatewayError as err:
            status, headers, body = self.api.gateway_response(err, ctx, request.lower_headers)
            response = Response(status, list(headers.items()), body)
        response.headers.append(("x-amzn-RequestId", request_id))
        return response

    def _handle(self, request: Request, request_id: str) -> Response:
        if len(request.body) > MAX_PAYLOAD_BYTES:
            raise GatewayError("REQUEST_TOO_LARGE", "Request Too Long")
        found = self.api.match(request.method, request.path)
        if found is None:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN", "Missing Authentication Token")
        route, path_params = found
        if not self.throttle.admit(route.template, route.method):
            raise GatewayError("THROTTLED", "Too Many Requests")  # before the authorizer and the integration
        integration = route.integration
        if integration.get("type") == "mock":
            return self._mock(integration, request)
        authorizer_context = self.authorizers.authorize(route, request, path_params)
        self.validate(route, request, path_params)
        if integration.get("type") != "aws_proxy":
            raise GatewayError("API_CONFIGURATION_ERROR", f"integration type {integration.get('type')!r} is not "
                                                          "served by the twin (aws_proxy and mock are)")
        function = self.lambdas.find(str(integration.get("uri")))
        event = self._proxy_event(route, request, path_params, request_id, authorizer_context)
        timeout = min(INTEGRATION_TIMEOUT_SECONDS, float(integration.get("timeoutInMillis", 29000)) / 1000)
        return self._map_response(function.invoke(event, timeout=timeout))

    def _mock(self, integration: Mapping[str, Any], request: Request) -> Response:
        default = (integration.get("responses") or {}).get("default") or {}
        headers = [(k.removeprefix("method.response.header."), parameter_value(v, request.lower_headers))
                   for k, v in (default.get("responseParameters") or {}).items()
                   if k.startswith("method.response.header.")]
        template = (default.get("responseTemplates") or {}).get("application/json", "")
        headers.append(("Content-Type", "application/json"))
        return Response(int(default.get("statusCode", 200)), headers, template.encode())

    def validate(self, route: Route, request: Request, path_params: Mapping[str, str]) -> None:
        validate_request(route, request, path_params, strict_parameters=self.strict_parameters)

    # --- Lambda proxy integration (payload v1) ------------------------------------------------------------------
    def _is_binary(self, request: Request) -> bool:
        media = self.api.binary_media_types()
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
        binary = bool(request.body) and self._is_binary(request)
        if not request.body:
            body = None
        elif binary:
            body = base64.b64encode(request.body).decode()
        else:
            body = request.body.decode("utf-8")
        context = request_context_for(self.api, route, request, request_id)
        if authorizer is not None:
            context["authorizer"] = authorizer
        return proxy_event(method=request.method, path=request.path, resource=route.template,
                           header_items=request.header_items, query=request.query(), path_parameters=path_params,
                           body=body, is_base64=binary, context=context)

    def _map_response(self, result: InvokeResult) -> Response:
        if result.throttled:
            # Lambda refused the invocation (429 TooManyRequestsException): a REST API's proxy integration answers
            # that as an integration failure, 500 `Internal server error` (DEFAULT_5XX unless the body maps
            # INTEGRATION_FAILURE), never the 429 a stage throttle gives (AWS Lambda guide, "Handling Lambda errors
            # with an API Gateway API").
            self.sink.write("gateway", f"Lambda throttled {result.request_id}: {result.error}")
            raise GatewayError("INTEGRATION_FAILURE", "Internal server error", status=500)
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

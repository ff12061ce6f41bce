"""OpenTelemetry for the Lambda entry points: one span per invocation, continuing the caller's W3C `traceparent`.

Decorate an entry point with `@traced` (outermost). Tracing is off unless an OTLP endpoint is configured
(`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`, which the stack's `otlpEndpoint` sets):
then, and only on the first invocation, the SDK is imported and set up, so a handler module's import (the cold
start's init phase) never loads OpenTelemetry (`tests/functions/test_cold_imports.py`).

API Gateway REST emits no OpenTelemetry span and forwards the client's `traceparent` header untouched, so the
function's span is the trace's first one in the cloud unless the caller sent a header (the twin's gateway sends
its own span's). Outgoing `requests` calls carry the function's context (the requests instrumentation injects
`traceparent` and records a client span each).

A Lambda environment is frozen as soon as the handler returns, so a batch processor's thread may never run
again: every invocation ends with a `force_flush` bounded by `FLUSH_TIMEOUT_MILLIS`. A collector that is down or
slow costs at most that bound and never fails the invocation.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: How long an invocation waits for its spans to leave (a frozen environment would keep them forever).
FLUSH_TIMEOUT_MILLIS = 1000
#: One export request's deadline, retries included: shorter than the flush wait, so a dead collector is given up.
EXPORT_TIMEOUT_SECONDS = 0.8
TRACEPARENT = "traceparent"

F = TypeVar("F", bound=Callable[..., Any])
_log = logging.getLogger(__name__)


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OTLP endpoint is set: the one switch of tracing (empty = off)."""
    source = os.environ if environ is None else environ
    return any(source.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def header_carrier(event: Mapping[str, Any]) -> dict[str, str]:
    """The event's headers with lower-case names: API Gateway keeps the client's spelling (`Traceparent`), the
    W3C propagator looks up `traceparent`. Empty for an event without headers (a direct invoke, S3)."""
    headers = event.get("headers") if isinstance(event, Mapping) else None
    if not isinstance(headers, Mapping):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items() if v is not None}


def span_name(event: Mapping[str, Any], function_name: str) -> str:
    """`POST /orders/{id}` for an API Gateway event (the route template, so names group), else the function."""
    if isinstance(event, Mapping) and event.get("type") == "REQUEST" and "methodArn" in event:
        return f"authorize {event.get('httpMethod', '')} {event.get('resource', '')}".rstrip()
    if isinstance(event, Mapping) and event.get("httpMethod"):
        return f"{event['httpMethod']} {event.get('resource') or event.get('path') or ''}".rstrip()
    return function_name


def name_client_span(span: Any, request: Any) -> None:
    """`POST /api/inventory/reserve` rather than the instrumentation's bare `POST`: the waterfall tells the
    order Lambda's calls apart (the path is the route; no query string, which could carry data)."""
    method = getattr(request, "method", None)
    url = getattr(request, "url", None)
    if method and url and span.is_recording():
        span.update_name(f"{method} {urlsplit(str(url)).path or '/'}")


class _Tracing:
    """The SDK, set up once per execution environment (the first traced invocation builds it)."""

    def __init__(self) -> None:
        from opentelemetry import propagate, trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "lambda")
        service = os.environ.get("OTEL_SERVICE_NAME") or self.function_name
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service, "faas.name": service,
                                                                 "cloud.provider": "aws"}))
        # Batch, not simple: the spans of one invocation leave in one request at its flush, not one each.
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=EXPORT_TIMEOUT_SECONDS)))
        self.tracer = self.provider.get_tracer("serverless-mesh.functions")
        self.propagate = propagate
        self.trace = trace
        self.server_kind = SpanKind.SERVER
        self.error_status = Status(StatusCode.ERROR)
        RequestsInstrumentor().instrument(tracer_provider=self.provider, request_hook=name_client_span)

    def run(self, handler: Callable[..., Any], event: Any, context: Any) -> Any:
        parent = self.propagate.extract(header_carrier(event))
        attributes = {"faas.invocation_id": str(getattr(context, "aws_request_id", "")),
                      "faas.name": self.function_name}
        try:
            with self.tracer.start_as_current_span(span_name(event, self.function_name), context=parent,
                                                   kind=self.server_kind, attributes=attributes) as span:
                result = handler(event, context)
                status = result.get("statusCode") if isinstance(result, dict) else None
                if isinstance(status, int):
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(self.error_status)
                return result
        finally:
            self.flush()

    def flush(self) -> None:
        try:
            self.provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MILLIS)
        except Exception:  # telemetry never fails a request
            _log.warning("spans not flushed", exc_info=True)


@functools.cache
def _tracing() -> _Tracing | None:
    if not endpoint_configured():
        return None
    try:
        return _Tracing()
    except Exception:  # a broken exporter setup must not take the function down with it
        _log.warning("tracing not set up", exc_info=True)
        return None


def traced(handler: F) -> F:
    """Run `handler(event, context)` in a span of its own when tracing is configured (see the module docstring)."""

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        tracing = _tracing()
        if tracing is None:
            return handler(event, context)
        return tracing.run(handler, event, context)

    return entry  # type: ignore[return-value]


def annotate(key: str, value: str | int | float | bool) -> None:
    """Add an attribute to the current span (e.g. `order.id`, so a trace is found by the order); a no-op when
    tracing is off, without importing anything."""
    tracing = _tracing()
    if tracing is not None:
        tracing.trace.get_current_span().set_attribute(key, value)

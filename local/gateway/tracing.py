"""The gateway's span: one SERVER span per request, the first of an order's trace, its context handed to the
authorizer and the integration as a `traceparent` header in their events.

In the cloud API Gateway REST emits no OpenTelemetry span: it forwards the client's `traceparent` unchanged and
the Lambda's span is the first one (see `functions.common.tracing`). The twin adds this span so the waterfall
shows what the gateway itself costs (routing, the authorizer's call, validation), and it continues a trace the
client started, as the cloud's functions would. Exported to the twin's collector like every other span.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from local.gateway.messages import Request

SERVICE = "api-gateway"
TRACE_HEADERS = ("traceparent", "tracestate")
_W3C = TraceContextTextMapPropagator()


def with_trace_headers(request: Request, span: Span) -> Request:
    """`request` with its trace headers replaced by `span`'s context (what the functions' events carry)."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=set_span_in_context(span))
    kept = [(k, v) for k, v in request.header_items if k.lower() not in TRACE_HEADERS]
    return dataclasses.replace(request, header_items=kept + sorted(carrier.items()))


class GatewayTracer:
    """Spans of one stage, exported by OTLP/HTTP to `otlp_endpoint` (the collector's base URL)."""

    def __init__(self, otlp_endpoint: str, stage: str) -> None:
        self.stage = stage
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: SERVICE}))
        exporter = OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces", timeout=2.0)
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
        self.tracer = self.provider.get_tracer("serverless-mesh.twin.gateway")

    @contextmanager
    def request(self, request: Request, route: str) -> Iterator[tuple[Request, Span]]:
        """A span for `request` (named after its route template), continuing the client's `traceparent`;
        yields the request as the functions must see it."""
        parent = _W3C.extract(request.lower_headers)
        attributes: dict[str, Any] = {"http.request.method": request.method, "http.route": route,
                                      "url.path": f"/{self.stage}{request.path}"}
        with self.tracer.start_as_current_span(f"{request.method} {route}", context=parent, kind=SpanKind.SERVER,
                                               attributes=attributes, record_exception=False) as span:
            yield with_trace_headers(request, span), span

    @staticmethod
    def finish(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    def shutdown(self) -> None:
        self.provider.shutdown()

"""Tracing in the Lambda code (`functions.common.tracing`): the propagation helpers, and the order function's spans
and outgoing `traceparent` headers exported to a real OTLP/HTTP receiver (the twin's collector), or not at all when
that receiver is down, without failing the order."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from functions.common import tracing
from local.traces.collector import CollectorServer
from local.traces.store import read_spans
from tests.functions import shop_support as shop
from tests.functions.test_orders import create, shop_env, tables  # noqa: F401 (fixtures)
from tests.support.events import response_json

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"


def test_header_carrier_lowercases_names_and_survives_events_without_headers() -> None:
    assert tracing.header_carrier({"headers": {"Traceparent": TRACEPARENT, "X-Other": "1"}}) == {
        "traceparent": TRACEPARENT, "x-other": "1"}
    assert tracing.header_carrier({"headers": None}) == {}
    assert tracing.header_carrier({"Records": []}) == {}


def test_span_names_group_by_route_template() -> None:
    proxy = {"httpMethod": "GET", "resource": "/orders/{id}", "path": "/orders/o-1"}
    authorizer = {"type": "REQUEST", "methodArn": "arn:...", "httpMethod": "POST", "resource": "/orders"}
    assert tracing.span_name(proxy, "fn") == "GET /orders/{id}"
    assert tracing.span_name(authorizer, "fn") == "authorize POST /orders"
    assert tracing.span_name({"Records": []}, "images-processor") == "images-processor"


def test_tracing_is_off_without_an_endpoint_and_on_with_either_variable() -> None:
    assert not tracing.endpoint_configured({})
    assert not tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})  # the stack's empty otlpEndpoint
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.endpoint_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})


def test_client_spans_are_named_after_the_path() -> None:
    renamed: list[str] = []
    span = SimpleNamespace(is_recording=lambda: True, update_name=renamed.append)
    tracing.name_client_span(span, SimpleNamespace(method="POST", url="http://ingress/api/inventory/reserve?x=1"))
    assert renamed == ["POST /api/inventory/reserve"]


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Tracing set up afresh for one test, torn down after (the SDK and the requests patch are process-wide)."""
    tracing._tracing.cache_clear()

    def configure(endpoint: str) -> None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-create")

    yield configure
    state = tracing._tracing()
    if state is not None:
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        RequestsInstrumentor().uninstrument()
        state.provider.shutdown()
    tracing._tracing.cache_clear()


def test_the_order_span_continues_the_callers_trace_and_its_calls_carry_it(
        shop_env: SimpleNamespace, traced: Any, collector: CollectorServer, tmp_path: Path) -> None:  # noqa: F811
    traced(collector.url)
    response = create({"productId": "widget", "quantity": 1}, headers={"traceparent": TRACEPARENT})
    assert response["statusCode"] == 201, response
    order_id = response_json(response)["id"]

    spans = read_spans(tmp_path)  # flushed before the handler returned
    function = next(s for s in spans if s.kind == "server")
    assert (function.trace_id, function.parent_id, function.service) == (TRACE_ID, PARENT, "orders-create")
    assert function.name == "POST /orders" and function.attributes["order.id"] == order_id
    calls = [s for s in spans if s.kind == "client"]
    assert [c.name for c in calls] == ["POST /api/inventory/reserve", "POST /api/notifications"]
    assert all(c.parent_id == function.span_id and c.trace_id == TRACE_ID for c in calls)
    # Each call went out with its own span as the parent the service continues from.
    assert shop_env.services.traceparents == [f"00-{TRACE_ID}-{c.span_id}-01" for c in calls]


def test_an_order_succeeds_quickly_when_the_collector_is_down(shop_env: SimpleNamespace,  # noqa: F811
                                                              traced: Any) -> None:
    traced(shop.closed_port_url())
    state = tracing._tracing()
    assert state is not None
    flushes: list[float] = []
    flush = state.flush

    def timed_flush() -> None:
        started = time.monotonic()
        flush()
        flushes.append(time.monotonic() - started)

    state.flush = timed_flush  # type: ignore[method-assign]
    response = create({"productId": "widget", "quantity": 1})
    assert response["statusCode"] == 201, response
    # What the dead collector cost the invocation: one flush, given up within its bound (plus scheduling slack).
    assert len(flushes) == 1 and flushes[0] < tracing.FLUSH_TIMEOUT_MILLIS / 1000 + 0.5, flushes
    assert shop_env.services.traceparents, "the calls still carry the trace to the mesh"

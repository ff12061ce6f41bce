"""Tracing in the services (`services.common.tracing`): the inventory process continues a caller's trace with
FastAPI's server span and a span per PostgreSQL query, exports them to a real OTLP/HTTP receiver, traces nothing
that arrives without a parent (probes), and keeps answering when the receiver is down."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from local.postgres import ConnectionParams, PostgresServer
from local.traces.collector import CollectorServer
from local.traces.store import SpanRecord, read_spans
from services.common.tracing import endpoint_configured, untraced
from tests.services.conftest import run_service
from tests.support.postgres import bootstrapped_database
from tests.support.servers import LOOPBACK, free_port

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture(scope="module")
def db(postgres: PostgresServer) -> ConnectionParams:
    """The inventory service's own role on a migrated, seeded shop database."""
    return bootstrapped_database(postgres, "inventory_traced").role("inventory")


def _spans_when(state: Path, done: Callable[[list[SpanRecord]], bool], timeout: float = 10.0) -> list[SpanRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        spans = read_spans(state)
        if done(spans):
            return spans
        time.sleep(0.1)
    raise AssertionError(f"spans incomplete after {timeout} s: {[(s.service, s.name) for s in read_spans(state)]}")


def test_probe_paths_are_untraced_and_the_switch_is_the_endpoint() -> None:
    assert untraced({"path": "/ready"}) and untraced({"path": "/health"})
    assert not untraced({"path": "/api/inventory/reserve"})
    assert not endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": ""})
    assert endpoint_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})


def test_a_request_with_traceparent_gives_a_server_span_and_query_spans_under_it(
        db: ConnectionParams, log_dir: Path, collector: CollectorServer, tmp_path: Path) -> None:
    with run_service("inventory", db, log_dir, OTEL_EXPORTER_OTLP_ENDPOINT=collector.url) as svc, svc.client() as c:
        assert c.get("/api/inventory/prod-0001", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
                     ).status_code == 200
        assert c.get("/api/inventory/prod-0002").status_code == 200  # no parent: not traced
        spans = _spans_when(tmp_path, lambda found: any(s.kind == "server" for s in found)
                            and any(s.kind == "client" for s in found))
    server = next(s for s in spans if s.kind == "server")
    assert (server.trace_id, server.parent_id, server.service) == (TRACE_ID, PARENT, "inventory")
    assert server.name == "GET /api/inventory/{productId}"
    queries = [s for s in spans if s.kind == "client"]
    assert queries and all(q.parent_id == server.span_id for q in queries)
    assert any("FROM inventory" in str(q.attributes.get("db.statement", "")) for q in queries)
    # Neither the probes the test's start-up made nor the request without a parent left a trace of their own.
    assert {s.trace_id for s in spans} == {TRACE_ID}


def test_the_service_answers_when_the_collector_is_down(db: ConnectionParams, log_dir: Path) -> None:
    down = f"http://{LOOPBACK}:{free_port()}"
    with run_service("inventory", db, log_dir, OTEL_EXPORTER_OTLP_ENDPOINT=down) as svc, svc.client() as c:
        for _ in range(3):
            started = time.monotonic()
            r = c.get("/api/inventory/prod-0001", headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
            assert r.status_code == 200 and time.monotonic() - started < 1.0  # export is off the request path

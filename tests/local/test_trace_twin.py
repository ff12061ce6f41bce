"""One order, one trace across the serverless/mesh seam, on the twin of the dev stack.

The order goes in as a user sends it (POST /orders through the gateway with a fresh user's token, so the
authorizer runs rather than answering from its cache); its trace is read back with the reader the CLI and the
page share, and with `python -m local trace`. The chain is asserted link by link: each hop's span has the
previous hop's span as its parent.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Sequence

import pytest
import requests

from local.traces.store import SpanRecord
from local.traces.waterfall import find_trace
from tests.local.conftest import RunningTwin
from tests.local.test_shop_twin import _order, _user

pytestmark = pytest.mark.slow

# One product per test file on the shared twin (others assert their products' stock); two orders of its 3 units.
PRODUCT = "prod-0008"
GATEWAY = "api-gateway"
INGRESS = "envoy-ingress"


def _trace_when(twin: RunningTwin, ident: str, complete: Callable[[list[SpanRecord]], bool],
                timeout: float = 20.0) -> tuple[str, list[SpanRecord]]:
    """The trace of `ident` once `complete` holds: the senders flush on their own schedules (Envoy every 200 ms,
    the services every 500 ms, each Lambda at the end of its invocation)."""
    deadline = time.monotonic() + timeout
    found = None
    while time.monotonic() < deadline:
        found = find_trace(twin.state_dir, ident)
        if found is not None and complete(found[1]):
            return found
        time.sleep(0.25)
    spans = found[1] if found else []
    raise AssertionError(f"trace of {ident} incomplete after {timeout} s: "
                         + ", ".join(f"{s.service}:{s.name}" for s in spans))


def _one(spans: Sequence[SpanRecord], what: str, match: Callable[[SpanRecord], bool]) -> SpanRecord:
    found = [s for s in spans if match(s)]
    assert len(found) == 1, f"{what}: expected one span, found {[(s.service, s.name) for s in found]}"
    return found[0]


def _child(spans: Sequence[SpanRecord], parent: SpanRecord, what: str,
           match: Callable[[SpanRecord], bool]) -> SpanRecord:
    return _one(spans, f"{what} under {parent.service}:{parent.name}",
                lambda s: s.parent_id == parent.span_id and match(s))


def _reaches_postgres(spans: list[SpanRecord]) -> bool:
    services = {s.service for s in spans}
    return {GATEWAY, INGRESS, "inventory"} <= services and any(
        s.service == "inventory" and s.kind == "client" for s in spans)


def test_one_order_is_one_trace_from_the_gateway_to_postgresql(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    _, token = _user(api)
    r = _order(api, token, PRODUCT, 1)
    assert r.status_code == 201, r.text
    order_id = r.json()["id"]

    trace_id, spans = _trace_when(dev_twin, order_id, _reaches_postgres)
    assert {s.trace_id for s in spans} == {trace_id}
    gateway = _one(spans, "the gateway's span", lambda s: s.service == GATEWAY)
    assert gateway.parent_id is None and gateway.name == "POST /orders"
    authorizer = _child(spans, gateway, "the authorizer", lambda s: s.service.endswith("auth-authorizer"))
    function = _child(spans, gateway, "the order Lambda", lambda s: s.service.endswith("orders-create"))
    # The authorizer decides before the integration runs: siblings under the gateway, in that order.
    assert authorizer.end_ns <= function.start_ns
    assert function.attributes.get("order.id") == order_id
    ingresses = [s for s in spans if s.service == INGRESS]
    reserve = _one(ingresses, "the ingress' reserve", lambda s: any(
        c.parent_id == s.span_id and c.service == "inventory" for c in spans))
    call = _one(spans, "the order Lambda's HTTP call", lambda s: s.span_id == reserve.parent_id)
    assert call.parent_id == function.span_id and call.kind == "client"
    inventory = _child(spans, reserve, "the inventory service", lambda s: s.kind == "server")
    assert inventory.name == "POST /api/inventory/reserve"
    queries = [s for s in spans if s.parent_id == inventory.span_id and s.kind == "client"]
    assert queries and all(q.attributes.get("db.system") == "postgresql"
                           or q.attributes.get("db.system.name") == "postgresql" for q in queries), queries
    # Hop by hop: gateway → order Lambda → its call → ingress → inventory → PostgreSQL, each the next's parent.
    chain = [gateway, function, call, reserve, inventory, queries[0]]
    assert [c.parent_id for c in chain[1:]] == [p.span_id for p in chain[:-1]]
    assert all(p.start_ns <= c.start_ns and c.end_ns <= p.end_ns + 5_000_000 for p, c in itertools.pairwise(chain))

    shown = dev_twin.cli("trace", order_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"trace {trace_id}"
    # Indented by parent: the ingress two levels under the Lambda, the query one under the inventory.
    hops = (("POST /orders", GATEWAY), ("ingress", INGRESS), ("POST /api/inventory/reserve", "inventory"))
    depth = {name: next(len(line) - len(line.lstrip()) for line in lines[2:]
                        if line.strip().startswith(name) and line.split()[-3] == service) for name, service in hops}
    assert depth["POST /orders"] == 0 and depth["ingress"] == 6 and depth["POST /api/inventory/reserve"] == 8
    listed = dev_twin.cli("trace", "--limit", "50")
    assert trace_id in listed.stdout and order_id in listed.stdout


def test_an_incoming_traceparent_is_continued(dev_twin: RunningTwin) -> None:
    api = dev_twin.api_url
    _, token = _user(api)
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    r = requests.post(f"{api}/orders", json={"productId": PRODUCT, "quantity": 1}, timeout=60, headers={
        "Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex,
        "traceparent": f"00-{trace_id}-{parent}-01"})
    assert r.status_code == 201, r.text

    found_id, spans = _trace_when(dev_twin, trace_id, _reaches_postgres)
    assert found_id == trace_id
    gateway = _one(spans, "the gateway's span", lambda s: s.service == GATEWAY)
    assert gateway.parent_id == parent  # the client's span, which the collector never saw
    assert r.json()["id"] == next(s.attributes["order.id"] for s in spans if "order.id" in s.attributes)


def test_a_todo_request_is_traced_from_the_gateway_into_its_function(dev_twin: RunningTwin) -> None:
    # The TODO functions are `@traced` like the shop's: one trace, the function's span under the gateway's.
    trace_id, parent = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    created = requests.post(f"{dev_twin.api_url}/todos", json={"title": "traced"}, timeout=60,
                            headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    assert created.status_code == 201, created.text

    def complete(spans: list[SpanRecord]) -> bool:  # the gateway's span ends, and is sent, after the function's
        return {GATEWAY, "todos-create"} <= {s.service.removeprefix("serverless-mesh-dev-") for s in spans}

    _, spans = _trace_when(dev_twin, trace_id, complete)
    gateway = _one(spans, "the gateway's span", lambda s: s.service == GATEWAY)
    assert gateway.parent_id == parent and gateway.name == "POST /todos"
    function = _child(spans, gateway, "the TODO Lambda", lambda s: s.service.endswith("todos-create"))
    assert function.name == "POST /todos"
    assert gateway.start_ns <= function.start_ns <= function.end_ns <= gateway.end_ns


def test_unknown_trace_is_a_clear_error(dev_twin: RunningTwin) -> None:
    shown = dev_twin.cli("trace", "no-such-order")
    assert shown.returncode == 1
    assert "no trace 'no-such-order'" in shown.stderr

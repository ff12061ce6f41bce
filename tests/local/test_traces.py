"""The twin's trace collector and reader: OTLP/HTTP in (from the real SDK exporter), the spans file, the waterfall
the CLI prints and the page draws."""

from __future__ import annotations

import gzip
import http.client
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from local.traces.collector import CollectorServer
from local.traces.store import SpanRecord, SpanStore, read_spans
from local.traces.waterfall import find_trace, format_waterfall, recent_orders, waterfall


def _post(server: CollectorServer, body: bytes, headers: dict[str, str], path: str = "/v1/traces") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_spans_from_the_sdk_exporter_are_stored_with_their_parents(collector: CollectorServer,
                                                                   tmp_path: Path) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=collector.traces_url, timeout=5)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("order.id", "o-1")
        with tracer.start_as_current_span("POST /api/inventory/reserve", kind=SpanKind.CLIENT):
            pass
    provider.shutdown()

    spans = read_spans(tmp_path)
    by_name = {s.name: s for s in spans}
    root, call = by_name["POST /orders"], by_name["POST /api/inventory/reserve"]
    assert root.parent_id is None and call.parent_id == root.span_id and call.trace_id == root.trace_id
    assert (root.service, root.kind, call.kind) == ("orders", "server", "client")
    assert root.attributes == {"order.id": "o-1"} and len(root.trace_id) == 32
    assert find_trace(tmp_path, "o-1") == find_trace(tmp_path, root.trace_id) == (root.trace_id, spans)


def test_gzip_and_chunked_bodies_are_read_and_wrong_requests_are_refused(collector: CollectorServer,
                                                                         tmp_path: Path) -> None:
    def one_span(name: str) -> bytes:
        request = ExportTraceServiceRequest()
        span = request.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = bytes(range(16)), bytes(range(8)), name
        return request.SerializeToString()

    protobuf = {"Content-Type": "application/x-protobuf"}
    assert _post(collector, gzip.compress(one_span("gzipped")), {**protobuf, "Content-Encoding": "gzip"}) == 200
    body = one_span("chunked")  # how Envoy's exporter sends: no Content-Length, two chunks
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, body[:5], len(body) - 5, body[5:])
    assert _post(collector, chunked, {**protobuf, "Transfer-Encoding": "chunked"}) == 200
    assert [s.name for s in read_spans(tmp_path)] == ["gzipped", "chunked"]
    assert _post(collector, b"{}", {"Content-Type": "application/json"}) == 415
    assert _post(collector, b"\xff\xff\xff", protobuf) == 400
    assert _post(collector, body, protobuf, path="/v1/metrics") == 404
    assert len(read_spans(tmp_path)) == 2


def _span(span_id: str, parent: str | None, start_ms: float, end_ms: float, name: str = "s",
          service: str = "svc", **attributes: str) -> SpanRecord:
    return SpanRecord(trace_id="a" * 32, span_id=span_id, parent_id=parent, name=name, service=service,
                      kind="server", start_ns=int(start_ms * 1e6), end_ns=int(end_ms * 1e6), attributes=attributes)


def test_waterfall_is_depth_first_children_by_start_and_orphans_become_roots() -> None:
    spans = [_span("c2", "r", 30, 40, "second"), _span("r", None, 10, 100, "root"),
             _span("c1", "r", 20, 25, "first"), _span("g", "c1", 21, 22, "grandchild"),
             _span("o", "never-arrived", 50, 60, "orphan")]
    rows = waterfall(spans)
    assert [(r.name, r.depth) for r in rows] == [("root", 0), ("first", 1), ("grandchild", 2), ("second", 1),
                                                 ("orphan", 0)]
    assert rows[0].offset_ms == 0 and rows[1].offset_ms == 10 and rows[0].duration_ms == 90
    text = format_waterfall("a" * 32, rows).splitlines()
    assert text[0] == "trace " + "a" * 32
    assert text[4].startswith("    grandchild") and "11.0ms" in text[4] and "1.0ms" in text[4]


def test_recent_orders_lists_order_traces_newest_first_and_the_store_stays_bounded(tmp_path: Path) -> None:
    store = SpanStore(tmp_path, max_spans=10)
    for i in range(8):
        tid = f"{i:032x}"
        store.add([SpanRecord(trace_id=tid, span_id=f"{i:016x}", parent_id=None, name="POST /orders",
                              service="api-gateway", kind="server", start_ns=i * 1000, end_ns=i * 1000 + 500,
                              attributes={"order.id": f"o-{i}"} if i % 2 else {}),
                   SpanRecord(trace_id="f" * 32, span_id=f"{i + 100:016x}", parent_id=None, name="GET /todos",
                              service="api-gateway", kind="server", start_ns=i, end_ns=i + 1)])
    spans = read_spans(tmp_path)
    assert 5 <= len(spans) <= 10  # compacted to the newest half past the bound
    listed = recent_orders(tmp_path, limit=3)
    assert [t.trace_id for t in listed] == [f"{i:032x}" for i in (7, 6, 5)]
    assert [t.order_id for t in listed] == ["o-7", None, "o-5"]  # a failed order (no id) is listed too
    assert all(t.name == "POST /orders" for t in listed)

"""The twin's own OTLP/HTTP trace receiver: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest` (what
the Python exporter and Envoy's OpenTelemetry tracer send), spans into the `SpanStore`.

Only the part of the OTLP/HTTP spec the twin's senders use: binary protobuf, optionally gzip-encoded, answered
with an empty `ExportTraceServiceResponse`. JSON-encoded OTLP is refused with 415 (the spec's answer for an
unsupported content type) rather than misread. Bound to 127.0.0.1 on a free port.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from local.http_server import LoopbackHTTPServer
from local.processes import LOOPBACK
from local.traces.store import SpanRecord, SpanStore

TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
#: Kept attributes: what the waterfall shows or finds a trace by (the rest stays with the sender).
KEPT_ATTRIBUTES = ("order.id", "http.request.method", "http.method", "http.route", "url.path", "http.url",
                   "url.full", "http.response.status_code", "http.status_code", "db.statement", "db.query.text",
                   "db.system", "db.system.name", "upstream_cluster", "faas.name", "faas.invocation_id")
_KINDS = {Span.SPAN_KIND_SERVER: "server", Span.SPAN_KIND_CLIENT: "client", Span.SPAN_KIND_INTERNAL: "internal",
          Span.SPAN_KIND_PRODUCER: "producer", Span.SPAN_KIND_CONSUMER: "consumer"}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("string_value", "bool_value", "int_value", "double_value"):
        return getattr(value, kind)
    return None  # arrays, maps and bytes: nothing the waterfall shows


def _attributes(items: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items if isinstance(kv, KeyValue) and kv.key in KEPT_ATTRIBUTES}


def spans_of(request: ExportTraceServiceRequest) -> Iterator[SpanRecord]:
    """The request's spans, each with the `service.name` of its resource."""
    for resource_spans in request.resource_spans:
        service = next((kv.value.string_value for kv in resource_spans.resource.attributes
                        if kv.key == "service.name"), "unknown")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield SpanRecord(
                    trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                    parent_id=span.parent_span_id.hex() or None, name=span.name, service=service,
                    kind=_KINDS.get(span.kind, "unspecified"), start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano, error=span.status.code == Status.STATUS_CODE_ERROR,
                    attributes=_attributes(span.attributes))


class _Handler(BaseHTTPRequestHandler):
    server: CollectorServer
    protocol_version = "HTTP/1.1"  # keep-alive: the exporters reuse their connection

    def do_POST(self) -> None:
        body = self._body()
        if self.path.split("?")[0] != TRACES_PATH:
            return self._answer(404, b"not found", "text/plain")
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != PROTOBUF:
            return self._answer(415, b"only application/x-protobuf is accepted", "text/plain")
        try:
            if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
        except Exception:  # malformed protobuf or gzip: the sender's bug, told as 400
            return self._answer(400, b"malformed ExportTraceServiceRequest", "text/plain")
        self.server.store.add(spans_of(request))
        self._answer(200, ExportTraceServiceResponse().SerializeToString(), PROTOBUF)

    def _body(self) -> bytes:
        """The request body, by Content-Length or chunked (Envoy's exporter streams its request chunked)."""
        if "chunked" not in (self.headers.get("Transfer-Encoding") or "").lower():
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None  # every export would be a log line


class CollectorServer(LoopbackHTTPServer):
    request_queue_size = 128  # many Lambda workers flush at the end of the same burst

    def __init__(self, store: SpanStore, port: int = 0) -> None:
        super().__init__((LOOPBACK, port), _Handler)
        self.store = store
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}"

    @property
    def traces_url(self) -> str:
        return self.url + TRACES_PATH

    def start(self) -> CollectorServer:
        self._thread = threading.Thread(target=self.serve_forever, name="otlp-collector", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()

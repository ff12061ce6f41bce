"""The collector engine: the twin's OTLP/HTTP receiver, first in the lineup so every sender knows where to export.

It starts in `prepare` (it needs no graph) and hands on `TracingFacts`; the services, the Lambda workers, Envoy and
the gateway export to it whatever the stack's `otlpEndpoint` says: on the twin tracing is always on, into the
state folder (`local.traces.store`). `local.facts.exporter_env` replaces the graph's `OTEL_EXPORTER_OTLP_ENDPOINT`
(empty, or the cloud's collector) with the twin's, as `AWS_ENDPOINT_URL` points the SDKs at moto.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from local.engine import Engine, EngineSettings
from local.facts import Facts, TracingFacts
from local.processes import LogSink
from local.traces.store import SpanStore
from sim.capture import Graph

if TYPE_CHECKING:
    from local.traces.collector import CollectorServer


#: The Istio resource that turns tracing on in the cluster; on the twin tracing is always on, into this collector.
TELEMETRY = "kubernetes:telemetry.istio.io/v1:Telemetry"


class CollectorEngine(Engine):
    name = "traces"
    types = (TELEMETRY,)
    provides = TracingFacts

    def __init__(self, sink: LogSink, settings: EngineSettings) -> None:
        self.sink = sink
        self.settings = settings
        self.server: CollectorServer | None = None

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> CollectorEngine:
        return cls(sink, settings)

    def prepare(self) -> None:
        # Imported here: protobuf loads only for `up`, not for the CLI commands that read the lineup (`plan`).
        from local.traces.collector import CollectorServer

        store = SpanStore(self.settings.state_dir)
        self.server = CollectorServer(store).start()

    def deploy(self, graph: Graph, facts: Facts) -> TracingFacts:
        if self.server is None:
            self.prepare()
        assert self.server is not None
        self.sink.write(self.name, f"OTLP/HTTP collector on {self.server.traces_url}")
        return TracingFacts(otlp_endpoint=self.server.url)

    def endpoints(self) -> dict[str, str]:
        return {"otlpUrl": self.server.traces_url} if self.server is not None else {}

    def status(self) -> dict[str, Any]:
        if self.server is None:
            return {}
        return {"url": self.server.traces_url, "spansReceived": self.server.store.received}

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

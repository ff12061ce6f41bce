"""The gateway engine: serves the graph's REST API (one stage) on 127.0.0.1, each route's function checked at
deploy (a route to a function that is not in the graph fails the deploy, as the cloud's invocation would)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from local.engine import Engine, EngineSettings
from local.facts import Facts, GatewayFacts, LambdaFacts, TracingFacts
from local.gateway.handler import Gateway
from local.gateway.server import GatewayServer
from local.gateway.spec import TYPES, RestApi, find_rest_api
from local.gateway.throttle import METHOD_SETTINGS, StageThrottle
from local.processes import LOOPBACK, LogSink
from sim.capture import Graph, Resource

if TYPE_CHECKING:
    from local.gateway.tracing import GatewayTracer


class GatewayEngine(Engine):
    name = "gateway"
    types = (*TYPES, METHOD_SETTINGS)
    provides = GatewayFacts
    reads = (TracingFacts, LambdaFacts)

    def __init__(self, sink: LogSink, *, port: int = 0, strict_parameters: bool = False) -> None:
        self.sink = sink
        self.port = port
        self.strict_parameters = strict_parameters
        self.server: GatewayServer | None = None
        self.gateway: Gateway | None = None
        self.thread: threading.Thread | None = None
        self.stage: Resource | None = None
        self.tracer: GatewayTracer | None = None

    @classmethod
    def build(cls, settings: EngineSettings, sink: LogSink) -> GatewayEngine:
        return cls(sink, port=settings.gateway_port, strict_parameters=settings.strict_parameters)

    def deploy(self, graph: Graph, facts: Facts) -> GatewayFacts:
        found = find_rest_api(graph)
        if found is None:
            return GatewayFacts(url=None)
        functions = facts.require(LambdaFacts).functions
        api_res, stage, body = found
        self.stage = stage
        api = RestApi.from_body(body, api_id=api_res.id, stage=str(stage.inputs["stageName"]), region=graph.region)
        for route in api.routes:
            integration = route.integration
            if integration.get("type") == "aws_proxy":
                functions.find(str(integration.get("uri")))  # fails the deploy when no function matches
            found_auth = api.authorizer(route)
            if found_auth:
                functions.find(str(found_auth[1].get("authorizerUri")))
        throttle = StageThrottle.from_graph(graph, api_res, stage)
        self.tracer = self._tracer(facts, api.stage)
        self.gateway = Gateway(api, functions, self.sink, strict_parameters=self.strict_parameters, throttle=throttle,
                               tracer=self.tracer)
        self.server = GatewayServer(self.gateway, self.port)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self.thread.start()
        url = self.url
        return GatewayFacts(url=url, translations={str(stage.outputs.get("invokeUrl")): url} if url else {})

    @staticmethod
    def _tracer(facts: Facts, stage: str) -> GatewayTracer | None:
        tracing = facts.get(TracingFacts)
        if tracing is None or not tracing.otlp_endpoint:
            return None
        from local.gateway.tracing import GatewayTracer  # the SDK loads only when there is a collector

        return GatewayTracer(tracing.otlp_endpoint, stage)

    @property
    def url(self) -> str | None:
        if self.gateway is None:
            return None
        return f"http://{LOOPBACK}:{self.port}/{self.gateway.api.stage}"

    def endpoints(self) -> dict[str, str]:
        return {"apiUrl": self.url} if self.url else {}

    def status(self) -> dict[str, Any]:
        if self.gateway is None:
            return {}
        return {"url": self.url, "routes": len(self.gateway.api.routes),
                "authorizerInvocations": self.gateway.authorizers.invocations,
                "throttling": self.gateway.throttle.describe(), "throttled": self.gateway.throttle.throttled}

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.tracer is not None:
            self.tracer.shutdown()  # its last batch goes to the collector, which stops after the gateway
            self.tracer = None

"""Envoy's OpenTelemetry tracer on a listener: what Istio programs into the gateway for a `Telemetry` resource
whose provider is an `opentelemetry` extension provider (see `mesh.tracing` for those specs).

Each HTTP connection manager gets `tracing` with the `envoy.tracers.opentelemetry` provider exporting OTLP over
HTTP (`http_service`, protobuf to `/v1/traces`, as Istio's provider does with its `http` field) to a cluster of
its own. Envoy continues an incoming W3C `traceparent` (sampled flag respected) or starts a trace, makes one
SERVER span per request, and sends the upstream a `traceparent` whose parent is that span.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesh.envoy.common import TYPE_CLUSTER, Resource

TYPE_OPENTELEMETRY = "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig"
COLLECTOR_CLUSTER = "opentelemetry_collector"


@dataclass(frozen=True, kw_only=True)
class OtlpCollector:
    """An OTLP/HTTP receiver Envoy exports spans to."""

    host: str
    port: int
    path: str = "/v1/traces"
    sampling_percent: float = 100.0
    """Istio's `randomSamplingPercentage`: the share of requests without a sampled parent that start a trace."""
    timeout: str = "1s"


def hcm_tracing(collector: OtlpCollector, service_name: str) -> dict[str, Any]:
    """The connection manager's `tracing` block (service_name is the `service.name` of Envoy's spans)."""
    return {
        "random_sampling": {"value": collector.sampling_percent},
        "provider": {
            "name": "envoy.tracers.opentelemetry",
            "typed_config": {
                "@type": TYPE_OPENTELEMETRY,
                "http_service": {
                    "http_uri": {
                        "uri": f"http://{collector.host}:{collector.port}{collector.path}",
                        "cluster": COLLECTOR_CLUSTER,
                        "timeout": collector.timeout,
                    }
                },
                "service_name": service_name,
            },
        },
    }


def collector_cluster(collector: OtlpCollector) -> Resource:
    """The cluster the tracer's `http_uri` names."""
    return {
        "@type": TYPE_CLUSTER,
        "name": COLLECTOR_CLUSTER,
        "type": "STATIC",
        "connect_timeout": collector.timeout,
        "load_assignment": {
            "cluster_name": COLLECTOR_CLUSTER,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": collector.host, "port_value": collector.port}}}}]}],
        },
    }

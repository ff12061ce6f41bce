"""Tracing in the cluster: the Istio extension provider that points Envoy's OpenTelemetry tracer at an OTLP/HTTP
endpoint, and the mesh-wide `Telemetry` resource that selects it (what `mesh.envoy.tracing` is for the twin).

One endpoint, the stack's `otlpEndpoint` (an OTLP/HTTP base URL such as `http://otel-collector.observability:4318`):
the functions' and services' exporters append `/v1/traces` to it, and Istio is told the same host, port and path.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

PROVIDER = "otel-tracing"
TRACES_PATH = "/v1/traces"
#: Every request the ingress sees starts a trace when its caller sent none (the order Lambda always sends one).
SAMPLING_PERCENT = 100.0
DEFAULT_PORTS = {"http": 4318, "https": 443}


@dataclass(frozen=True, kw_only=True)
class OtlpTarget:
    host: str
    port: int
    traces_path: str


def otlp_target(endpoint: str) -> OtlpTarget:
    """Host, port and traces path of an OTLP/HTTP base URL (the exporters' `OTEL_EXPORTER_OTLP_ENDPOINT` rule:
    the signal path is appended to the base's own path). ValueError for anything but http(s)://host[:port][/path]."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"not an http(s) OTLP base URL: {endpoint!r}")
    return OtlpTarget(host=parts.hostname, port=parts.port or DEFAULT_PORTS[parts.scheme],
                      traces_path=parts.path.rstrip("/") + TRACES_PATH)


def extension_provider(endpoint: str) -> dict[str, Any]:
    """The `meshConfig.extensionProviders` entry: Envoy's OpenTelemetry tracer over OTLP/HTTP."""
    target = otlp_target(endpoint)
    return {"name": PROVIDER, "opentelemetry": {"service": target.host, "port": target.port,
                                                "http": {"path": target.traces_path, "timeout": "5s"}}}


def mesh_telemetry(root_namespace: str) -> dict[str, Any]:
    """The mesh-wide Telemetry (no selector, in Istio's root namespace) that turns the provider on."""
    return {
        "apiVersion": "telemetry.istio.io/v1",
        "kind": "Telemetry",
        "metadata": {"name": "mesh-default", "namespace": root_namespace},
        "spec": {"tracing": [{"providers": [{"name": PROVIDER}], "randomSamplingPercentage": SAMPLING_PERCENT}]},
    }

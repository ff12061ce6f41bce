"""OpenTelemetry for the services: FastAPI's own request spans and a span per PostgreSQL query, exported by OTLP.

Off unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT`,
set from the stack's `otlpEndpoint`). FastAPI traces a request by itself once a tracer provider is installed
(its native telemetry extracts the caller's W3C `traceparent`), so this module only installs the provider and the
psycopg instrumentation; it must run before the pool opens its first connection (psycopg's `connect` is wrapped).

A service continues traces and never starts one (parent-based sampling, unsampled roots): behind the mesh every
request arrives with the ingress' `traceparent`, and what comes without one (kubelet probes, the pool's own
checks) would only bury the orders' traces in single-span noise.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
#: One export's deadline, retries included: a collector that is down costs the batch thread this, never a request.
EXPORT_TIMEOUT_SECONDS = 2.0
#: How often a batch leaves: short, so a waterfall is complete a second after the order.
SCHEDULE_DELAY_MILLIS = 500
#: Requests FastAPI does not trace (probes answer for the pod, not for a user).
UNTRACED_PATHS = frozenset({"/health", "/ready"})


def endpoint_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an OTLP endpoint is set: the one switch of tracing (empty = off)."""
    source = os.environ if environ is None else environ
    return any(source.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def untraced(scope: Mapping[str, object]) -> bool:
    """FastAPI's telemetry `exclude` hook: True for the probe paths."""
    return scope.get("path") in UNTRACED_PATHS


@functools.cache
def setup_tracing(service: str) -> bool:
    """Install the process' tracer provider and instrument psycopg, once; False (nothing done) when tracing is off."""
    if not endpoint_configured():
        return False
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service}),
                              sampler=ParentBased(root=ALWAYS_OFF))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=EXPORT_TIMEOUT_SECONDS),
                                                   schedule_delay_millis=SCHEDULE_DELAY_MILLIS))
    trace.set_tracer_provider(provider)
    # No sqlcommenter: the statements stay byte-identical (pg_stat_statements groups them as before).
    PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
    return True

"""Translate the same Istio VirtualService/DestinationRule dicts into Envoy v3 configuration.

This is the local twin's mesh engine: what Istio's control plane (istiod) would program into the
ingress gateway or a sidecar, reduced to what our specs use. It mirrors istiod's translation where it
matters for behaviour:

* one cluster per (host, subset, port), named ``outbound|<port>|<subset>|<host>`` like istiod;
* a 0-weight destination is dropped from ``weighted_clusters`` (istiod does the same), so weight 0
  means *no* request reaches that subset; a lone remaining destination becomes a plain ``cluster``
  (istiod keeps a one-entry ``weighted_clusters``; Envoy routes both the same way);
* a route without ``timeout`` gets ``0s`` (disabled), a route without ``retries`` gets istiod's default
  policy (2 attempts on connect-failure/refused-stream/unavailable/cancelled/503);
* retries use the ``previous_hosts`` predicate, as istiod sets it;
* circuit breaker thresholds default to "unlimited" and are narrowed by ``connectionPool``;
* ``outlierDetection`` maps field by field, success-rate ejection off, ``minHealthPercent`` (default 0)
  as the panic threshold.

mTLS (``tls.mode``), PeerAuthentication and the sidecars' AuthorizationPolicies are enforced with workload
certificates and have no local equivalent: the twin's upstreams are plain processes on loopback. The policies of
the ingress gateway's own workload do: RequestAuthentication and AuthorizationPolicy selecting it become its
``jwt_authn`` and ``rbac`` filters (``auth``). Any other spec field this module does not translate raises
``UnsupportedSpec`` instead of being ignored, so the twin never silently diverges from the cluster.
The package, one job per module: `common` (types, defaults, names), `routes` (VirtualServices), `clusters`
(DestinationRules), `endpoints` (Services and pods), `auth` (gateway security filters), `tracing` (the
OpenTelemetry tracer), `listeners` (`translate`).
Pure: writing the files Envoy watches and running it are `local.envoy`'s.
"""

from mesh.envoy.auth import security_filters
from mesh.envoy.clusters import clusters_for
from mesh.envoy.common import (
    ISTIO_DEFAULT_CONNECT_TIMEOUT,
    ISTIO_DEFAULT_LB,
    ISTIO_DEFAULT_RETRY_ATTEMPTS,
    ISTIO_DEFAULT_RETRY_ON,
    LOOPBACK,
    TYPE_CLUSTER,
    TYPE_LISTENER,
    TYPE_ROUTE,
    UNLIMITED,
    Endpoint,
    Endpoints,
    EnvoyResources,
    ListenerSpec,
    Resource,
    UnsupportedSpec,
    cluster_name,
    host_domains,
    qualify_gateway,
    qualify_host,
)
from mesh.envoy.endpoints import ServiceRef, Workload, endpoints_for
from mesh.envoy.listeners import listener, translate
from mesh.envoy.routes import route_configuration
from mesh.envoy.tracing import COLLECTOR_CLUSTER, OtlpCollector

__all__ = [
    "COLLECTOR_CLUSTER", "ISTIO_DEFAULT_CONNECT_TIMEOUT", "ISTIO_DEFAULT_LB", "ISTIO_DEFAULT_RETRY_ATTEMPTS",
    "ISTIO_DEFAULT_RETRY_ON", "LOOPBACK", "TYPE_CLUSTER", "TYPE_LISTENER", "TYPE_ROUTE", "UNLIMITED", "Endpoint",
    "Endpoints", "EnvoyResources", "ListenerSpec", "OtlpCollector", "Resource", "ServiceRef", "UnsupportedSpec",
    "Workload", "cluster_name", "clusters_for", "endpoints_for", "host_domains", "listener", "qualify_gateway",
    "qualify_host", "route_configuration", "security_filters", "translate",
]

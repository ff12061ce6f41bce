"""What the translation is made of: Envoy type URLs, istiod's defaults, the listener spec, the resources
it produces, and istiod's names for hosts and clusters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.common import CLUSTER_DOMAIN, MESH_GATEWAY

LOOPBACK = "127.0.0.1"
UNLIMITED = 4294967295

TYPE_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
TYPE_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPE_ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
TYPE_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TYPE_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TYPE_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
TYPE_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"

#: istiod's retry policy for routes that say nothing about retries.
ISTIO_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
ISTIO_DEFAULT_RETRY_ATTEMPTS = 2
#: istiod's default load balancer since 1.14.
ISTIO_DEFAULT_LB = "LEAST_REQUEST"
ISTIO_DEFAULT_CONNECT_TIMEOUT = "10s"

Endpoint = tuple[str, int]
#: ``{(host FQDN, subset or None): [(ip, port), ...]}``: where each subset's pods run in the twin.
Endpoints = Mapping[tuple[str, str | None], Sequence[Endpoint]]
Resource = dict[str, Any]


class UnsupportedSpec(ValueError):
    """A spec uses an Istio feature the twin cannot reproduce faithfully (or a malformed spec)."""


@dataclass(frozen=True, kw_only=True)
class ListenerSpec:
    """One Envoy listener: the view of one Istio gateway (an ingress gateway, or ``mesh`` for sidecars)."""

    name: str
    port: int
    gateway: str = MESH_GATEWAY
    """``mesh`` or ``<namespace>/<name>`` of an Istio Gateway; VirtualServices bound to it are served."""
    virtual_services: tuple[str, ...] = ()
    """Only these VirtualServices (``<namespace>/<name>`` or ``<name>``); empty means all bound to the gateway."""
    default_host: str | None = None
    """A host whose routes also answer any other Host header (so ``curl http://127.0.0.1:PORT/`` works)."""
    workload_namespace: str | None = None
    """Namespace of the gateway workload behind the listener; RequestAuthentication/AuthorizationPolicy objects
    that select it become its ``jwt_authn``/``rbac`` filters (None: no workload, no security filters)."""
    workload_labels: tuple[tuple[str, str], ...] = ()
    """Pod labels of that workload (what a policy's ``selector.matchLabels`` is matched against)."""


@dataclass(frozen=True)
class EnvoyResources:
    """The xDS resources for one configuration version (plain dicts in Envoy's JSON form)."""

    listeners: list[Resource] = field(default_factory=list)
    route_configs: list[Resource] = field(default_factory=list)
    clusters: list[Resource] = field(default_factory=list)

    def cluster(self, name: str) -> Resource:
        for cluster in self.clusters:
            if cluster["name"] == name:
                return cluster
        raise KeyError(name)

    def route_config(self, name: str) -> Resource:
        for config in self.route_configs:
            if config["name"] == name:
                return config
        raise KeyError(name)


# --- names -----------------------------------------------------------------------------------------


def qualify_host(host: str, namespace: str) -> str:
    """Istio reads a short host (``reviews``) relative to the resource's namespace."""
    if host == "*" or "." in host:
        return host
    return f"{host}.{namespace}.{CLUSTER_DOMAIN}"


def qualify_gateway(gateway: str, namespace: str) -> str:
    if gateway == MESH_GATEWAY or "/" in gateway:
        return gateway
    return f"{namespace}/{gateway}"


def cluster_name(host: str, subset: str | None, port: int) -> str:
    """istiod's outbound cluster naming; Envoy stats are ``cluster.<this>.<stat>``."""
    return f"outbound|{port}|{subset or ''}|{host}"


def host_domains(host: str) -> list[str]:
    """Envoy domains for an Istio host: a Service FQDN also answers to its short forms, as in a sidecar."""
    if host.endswith("." + CLUSTER_DOMAIN):
        name, namespace = host.split(".")[:2]
        return [host, f"{name}.{namespace}.svc", f"{name}.{namespace}", name]
    return [host]


def name_and_namespace(resource: Mapping[str, Any]) -> tuple[str, str]:
    """A resource's `metadata.name` (required) and namespace (`default` when unset, as Kubernetes reads it)."""
    meta = resource.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise UnsupportedSpec(f"{resource.get('kind')}: metadata.name is required")
    return str(name), str(meta.get("namespace") or "default")


@dataclass(frozen=True)
class Destination:
    """Where a route sends traffic: one (host, subset, port), which is one Envoy cluster."""

    host: str
    subset: str | None
    port: int

    @property
    def cluster(self) -> str:
        return cluster_name(self.host, self.subset, self.port)

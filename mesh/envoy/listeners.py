"""Listeners, and `translate`: Istio specs + endpoints -> every Envoy resource for one configuration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesh.envoy.auth import security_filters
from mesh.envoy.clusters import clusters_for
from mesh.envoy.common import (
    LOOPBACK,
    TYPE_HCM,
    TYPE_LISTENER,
    TYPE_ROUTE,
    TYPE_ROUTER,
    Destination,
    Endpoints,
    EnvoyResources,
    ListenerSpec,
    Resource,
    UnsupportedSpec,
)
from mesh.envoy.routes import route_configuration
from mesh.envoy.tracing import OtlpCollector, collector_cluster, hcm_tracing


def listener(spec: ListenerSpec, rds_path: str | None, route_config: Resource | None = None,
             security: Sequence[Resource] = (), tracing: OtlpCollector | None = None) -> Resource:
    """An HTTP listener on 127.0.0.1: routes come from a watched RDS file (or inline, for pure tests); the
    workload's `security` filters (jwt_authn, rbac) run before the router; with `tracing`, a span per request."""
    hcm: dict[str, Any] = {
        "@type": TYPE_HCM,
        "stat_prefix": spec.name,
        "codec_type": "AUTO",
        "strip_any_host_port": True,  # "myapp-service:80" matches the "myapp-service" domain, like a gateway
        "http_filters": [*security, {"name": "envoy.filters.http.router", "typed_config": {"@type": TYPE_ROUTER}}],
    }
    if tracing is not None:
        hcm["tracing"] = hcm_tracing(tracing, service_name=f"envoy-{spec.name}")
    if rds_path is not None:
        hcm["rds"] = {
            "route_config_name": spec.name,
            "config_source": {"path_config_source": {"path": rds_path}, "resource_api_version": "V3"},
        }
    else:
        hcm["route_config"] = route_config
    return {
        "@type": TYPE_LISTENER,
        "name": spec.name,
        "address": {"socket_address": {"address": LOOPBACK, "port_value": spec.port}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def translate(
    virtual_services: Sequence[Mapping[str, Any]],
    destination_rules: Sequence[Mapping[str, Any]],
    endpoints: Endpoints,
    listeners: Sequence[ListenerSpec],
    *,
    rds_paths: Mapping[str, str] | None = None,
    request_authentications: Sequence[Mapping[str, Any]] = (),
    authorization_policies: Sequence[Mapping[str, Any]] = (),
    tracing: OtlpCollector | None = None,
) -> EnvoyResources:
    """Envoy listeners, route configurations and clusters for the given Istio specs.

    With ``rds_paths`` (listener name -> file) each listener reads its routes from that file (so weights
    change without touching the listener); without it routes are inlined (static config). Writing the
    files is the caller's (``local.envoy``): this module only translates. RequestAuthentications and
    AuthorizationPolicies selecting a listener's workload become its security filters (``mesh.envoy.auth``).
    With ``tracing`` every listener traces to that collector (``mesh.envoy.tracing``), through a cluster of its own.
    """
    names = [spec.name for spec in listeners]
    if len(set(names)) != len(names):
        raise UnsupportedSpec(f"listener names must be unique: {names}")
    route_configs: list[Resource] = []
    used: list[Destination] = []
    out_listeners: list[Resource] = []
    for spec in listeners:
        config, destinations = route_configuration(spec, virtual_services)
        used.extend(destinations)
        route_configs.append({"@type": TYPE_ROUTE, **config})
        path = rds_paths[spec.name] if rds_paths is not None else None
        inline = None if path else {k: v for k, v in config.items()}
        security = security_filters(spec, request_authentications, authorization_policies)
        out_listeners.append(listener(spec, path, inline, security, tracing))
    clusters = clusters_for(used, destination_rules, endpoints)
    if tracing is not None:
        clusters.append(collector_cluster(tracing))
    return EnvoyResources(listeners=out_listeners, route_configs=route_configs, clusters=clusters)

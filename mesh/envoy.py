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

mTLS (``tls.mode``), PeerAuthentication and AuthorizationPolicy are enforced by sidecars with workload
certificates and have no local equivalent: the twin's upstreams are plain processes on loopback. Any
other spec field this module does not translate raises ``UnsupportedSpec`` instead of being ignored,
so the twin never silently diverges from the cluster.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.common import CLUSTER_DOMAIN, MESH_GATEWAY
from mesh.durations import envoy_duration

LOOPBACK = "127.0.0.1"
UNLIMITED = 4294967295

TYPE_LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
TYPE_CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
TYPE_ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_PREVIOUS_HOSTS = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"

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


def _meta(resource: Mapping[str, Any]) -> tuple[str, str]:
    meta = resource.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise UnsupportedSpec(f"{resource.get('kind')}: metadata.name is required")
    return str(name), str(meta.get("namespace") or "default")


# --- routes ----------------------------------------------------------------------------------------

_HTTP_ROUTE_KEYS = {"name", "match", "route", "timeout", "retries"}
_MATCH_KEYS = {"uri", "headers", "method", "ignoreUriCase", "name"}


def _string_match(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    if len(value) != 1:
        raise UnsupportedSpec(f"{where}: a StringMatch needs exactly one of exact/prefix/regex")
    ((kind, text),) = value.items()
    if kind == "exact":
        return {"exact": text}
    if kind == "prefix":
        return {"prefix": text}
    if kind == "regex":
        return {"safe_regex": {"regex": text}}
    raise UnsupportedSpec(f"{where}: unknown StringMatch {kind!r}")


def _route_match(match: Mapping[str, Any], where: str) -> dict[str, Any]:
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise UnsupportedSpec(f"{where}: match fields {sorted(unknown)} are not translated")
    out: dict[str, Any] = {}
    uri = match.get("uri")
    if uri is None:
        out["prefix"] = "/"
    else:
        uri_match = _string_match(uri, f"{where}.uri")
        if "exact" in uri_match:
            out["path"] = uri_match["exact"]
        elif "prefix" in uri_match:
            out["prefix"] = uri_match["prefix"]
        else:
            out["safe_regex"] = uri_match["safe_regex"]
    if match.get("ignoreUriCase"):
        out["case_sensitive"] = False
    headers = [
        {"name": name, "string_match": _string_match(value, f"{where}.headers.{name}")}
        for name, value in (match.get("headers") or {}).items()
    ]
    if "method" in match:
        headers.append({"name": ":method", "string_match": _string_match(match["method"], f"{where}.method")})
    if headers:
        out["headers"] = headers
    return out


def _retry_policy(retries: Mapping[str, Any] | None, where: str) -> dict[str, Any] | None:
    """istiod's ``retry.ConvertPolicy``: its default policy, overridden field by field by the route's."""
    policy: dict[str, Any] = {
        "retry_on": ISTIO_DEFAULT_RETRY_ON,
        "num_retries": ISTIO_DEFAULT_RETRY_ATTEMPTS,
        "retriable_status_codes": [503],
        "retry_host_predicate": [
            {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": _PREVIOUS_HOSTS}}
        ],
        "host_selection_retry_max_attempts": 5,
    }
    if retries is None:
        return policy
    unknown = set(retries) - {"attempts", "perTryTimeout", "retryOn", "retryIgnorePreviousHosts"}
    if unknown:
        raise UnsupportedSpec(f"{where}.retries: fields {sorted(unknown)} are not translated")
    attempts = int(retries.get("attempts", 0))
    if attempts <= 0:
        return None  # Istio: attempts 0 disables retries
    policy["num_retries"] = attempts
    if retries.get("retryOn"):
        conditions: list[str] = []
        codes: list[int] = []
        for item in str(retries["retryOn"]).split(","):
            item = item.strip()
            if item.isdigit() and 100 <= int(item) <= 599:  # status codes become retriable_status_codes
                codes.append(int(item))
            elif item:
                conditions.append(item)
        if codes and "retriable-status-codes" not in conditions:
            conditions.append("retriable-status-codes")
        policy["retry_on"] = ",".join(conditions)
        policy["retriable_status_codes"] = codes
        if not codes:
            del policy["retriable_status_codes"]
    if "perTryTimeout" in retries:
        policy["per_try_timeout"] = envoy_duration(retries["perTryTimeout"])
    if retries.get("retryIgnorePreviousHosts") is False:
        del policy["retry_host_predicate"]
    return policy


@dataclass(frozen=True)
class _Destination:
    host: str
    subset: str | None
    port: int

    @property
    def cluster(self) -> str:
        return cluster_name(self.host, self.subset, self.port)


def _destinations(http: Mapping[str, Any], namespace: str, where: str) -> list[tuple[_Destination, int]]:
    routes = http.get("route") or []
    if not routes:
        raise UnsupportedSpec(f"{where}: a route needs at least one destination")
    out: list[tuple[_Destination, int]] = []
    for entry in routes:
        unknown = set(entry) - {"destination", "weight"}
        if unknown:
            raise UnsupportedSpec(f"{where}.route: fields {sorted(unknown)} are not translated")
        dest = entry["destination"]
        port = (dest.get("port") or {}).get("number", 80)
        weight = entry.get("weight", 100 if len(routes) == 1 else 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise UnsupportedSpec(f"{where}: weight must be a non-negative integer, got {weight!r}")
        out.append((_Destination(qualify_host(dest["host"], namespace), dest.get("subset"), int(port)), weight))
    total = sum(weight for _, weight in out)
    if len(out) > 1 and total != 100:
        raise UnsupportedSpec(f"{where}: destination weights sum to {total}, not 100")
    return out


def _route_action(http: Mapping[str, Any], namespace: str, where: str) -> tuple[dict[str, Any], list[_Destination]]:
    destinations = _destinations(http, namespace, where)
    # istiod drops 0-weight destinations when others remain: a 0 weight receives nothing at all.
    live = [(d, w) for d, w in destinations if w > 0] or destinations[:1]
    action: dict[str, Any] = {}
    if len(live) == 1:
        action["cluster"] = live[0][0].cluster
    else:
        action["weighted_clusters"] = {"clusters": [{"name": d.cluster, "weight": w} for d, w in live]}
    action["timeout"] = envoy_duration(http["timeout"]) if "timeout" in http else "0s"
    retry = _retry_policy(http.get("retries"), where)
    if retry is not None:
        action["retry_policy"] = retry
    return action, [d for d, _ in destinations]


def _virtual_host(vs: Mapping[str, Any], domains: list[str]) -> tuple[dict[str, Any], list[_Destination]]:
    name, namespace = _meta(vs)
    spec = vs.get("spec") or {}
    unknown = set(spec) - {"hosts", "gateways", "http", "exportTo"}
    if unknown:
        raise UnsupportedSpec(f"VirtualService {namespace}/{name}: {sorted(unknown)} are not translated")
    routes: list[dict[str, Any]] = []
    used: list[_Destination] = []
    for index, http in enumerate(spec.get("http") or []):
        route_name = http.get("name") or str(index)
        where = f"VirtualService {namespace}/{name} http[{route_name}]"
        unknown = set(http) - _HTTP_ROUTE_KEYS
        if unknown:
            raise UnsupportedSpec(f"{where}: {sorted(unknown)} are not translated")
        action, destinations = _route_action(http, namespace, where)
        used.extend(destinations)
        for match_index, match in enumerate(http.get("match") or [{}]):
            routes.append(
                {
                    "name": f"{namespace}/{name}.{route_name}.{match_index}",
                    "match": _route_match(match, where),
                    "route": action,
                }
            )
    return {"name": f"{namespace}/{name}", "domains": domains, "routes": routes}, used


def _bound_to(vs: Mapping[str, Any], gateway: str) -> bool:
    _, namespace = _meta(vs)
    gateways = (vs.get("spec") or {}).get("gateways") or [MESH_GATEWAY]
    return gateway in {qualify_gateway(g, namespace) for g in gateways}


def route_configuration(
    listener: ListenerSpec, virtual_services: Sequence[Mapping[str, Any]]
) -> tuple[Resource, list[_Destination]]:
    """The RouteConfiguration a listener serves: one virtual host per VirtualService bound to its gateway."""
    wanted = set(listener.virtual_services)
    vhosts: list[dict[str, Any]] = []
    used: list[_Destination] = []
    seen: dict[str, str] = {}
    default = qualify_host(listener.default_host, "default") if listener.default_host else None
    default_found = False
    for vs in virtual_services:
        name, namespace = _meta(vs)
        if wanted and name not in wanted and f"{namespace}/{name}" not in wanted:
            continue
        if not _bound_to(vs, listener.gateway):
            continue
        hosts = [qualify_host(h, namespace) for h in (vs.get("spec") or {}).get("hosts") or []]
        domains = [d for h in hosts for d in host_domains(h)]
        if default is not None and default in hosts:
            domains.append("*")
            default_found = True
        for domain in domains:
            if domain in seen:
                owners = f"{seen[domain]} and {namespace}/{name}"
                raise UnsupportedSpec(f"listener {listener.name}: host {domain!r} is claimed by both {owners}")
            seen[domain] = f"{namespace}/{name}"
        vhost, destinations = _virtual_host(vs, domains)
        vhosts.append(vhost)
        used.extend(destinations)
    if default is not None and not default_found:
        raise UnsupportedSpec(f"listener {listener.name}: no VirtualService serves default host {default!r}")
    return {"name": listener.name, "virtual_hosts": vhosts}, used


# --- clusters --------------------------------------------------------------------------------------


def _merge_policy(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict[str, Any]:
    # Istio merges a subset's trafficPolicy over the rule's, field by field at the top level.
    merged = dict(base or {})
    merged.update(override or {})
    return merged


def _apply_connection_pool(cluster: dict[str, Any], pool: Mapping[str, Any], where: str) -> None:
    thresholds = cluster["circuit_breakers"]["thresholds"][0]
    tcp = pool.get("tcp") or {}
    http = pool.get("http") or {}
    unknown = (set(tcp) - {"maxConnections", "connectTimeout"}) | (
        set(http)
        - {"http1MaxPendingRequests", "http2MaxRequests", "maxRequestsPerConnection", "maxRetries", "idleTimeout"}
    )
    if unknown:
        raise UnsupportedSpec(f"{where}.connectionPool: {sorted(unknown)} are not translated")
    # Like istiod, a 0 (unset in proto3) keeps the unlimited default.
    if tcp.get("maxConnections", 0) > 0:
        thresholds["max_connections"] = int(tcp["maxConnections"])
    if "connectTimeout" in tcp:
        cluster["connect_timeout"] = envoy_duration(tcp["connectTimeout"])
    if http.get("http1MaxPendingRequests", 0) > 0:
        thresholds["max_pending_requests"] = int(http["http1MaxPendingRequests"])
    if http.get("http2MaxRequests", 0) > 0:
        thresholds["max_requests"] = int(http["http2MaxRequests"])
    if http.get("maxRetries", 0) > 0:
        thresholds["max_retries"] = int(http["maxRetries"])
    common: dict[str, Any] = {}
    if http.get("maxRequestsPerConnection", 0) > 0:
        common["max_requests_per_connection"] = int(http["maxRequestsPerConnection"])
    if "idleTimeout" in http:
        common["idle_timeout"] = envoy_duration(http["idleTimeout"])
    if common:
        cluster["typed_extension_protocol_options"] = {
            _HTTP_OPTIONS_KEY: {
                "@type": _HTTP_OPTIONS,
                "common_http_protocol_options": common,
                "explicit_http_config": {"http_protocol_options": {}},
            }
        }


def _apply_outlier_detection(cluster: dict[str, Any], outlier: Mapping[str, Any], where: str) -> None:
    known = {
        "consecutive5xxErrors",
        "consecutiveGatewayErrors",
        "interval",
        "baseEjectionTime",
        "maxEjectionPercent",
        "minHealthPercent",
    }
    unknown = set(outlier) - known
    if unknown:
        raise UnsupportedSpec(f"{where}.outlierDetection: {sorted(unknown)} are not translated")
    out: dict[str, Any] = {"enforcing_success_rate": 0}  # istiod turns success-rate ejection off
    if "consecutive5xxErrors" in outlier:
        value = int(outlier["consecutive5xxErrors"])
        out["consecutive_5xx"] = value
        out["enforcing_consecutive_5xx"] = 100 if value > 0 else 0
    if "consecutiveGatewayErrors" in outlier:
        value = int(outlier["consecutiveGatewayErrors"])
        out["consecutive_gateway_failure"] = value
        out["enforcing_consecutive_gateway_failure"] = 100 if value > 0 else 0
    for istio_key, envoy_key in (("interval", "interval"), ("baseEjectionTime", "base_ejection_time")):
        if istio_key in outlier:
            out[envoy_key] = envoy_duration(outlier[istio_key])
    if "maxEjectionPercent" in outlier:
        out["max_ejection_percent"] = int(outlier["maxEjectionPercent"])
    cluster["outlier_detection"] = out
    cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": float(outlier.get("minHealthPercent", 0))}}


def _cluster(
    destination: _Destination, policy: Mapping[str, Any], endpoints: Sequence[Endpoint], where: str
) -> Resource:
    unknown = set(policy) - {"tls", "connectionPool", "outlierDetection", "loadBalancer"}
    if unknown:
        raise UnsupportedSpec(f"{where}.trafficPolicy: {sorted(unknown)} are not translated")
    lb = (policy.get("loadBalancer") or {}).get("simple", ISTIO_DEFAULT_LB)
    if lb not in {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"}:
        raise UnsupportedSpec(f"{where}.loadBalancer: {lb!r} is not translated")
    name = destination.cluster
    cluster: dict[str, Any] = {
        "@type": TYPE_CLUSTER,
        "name": name,
        "type": "STATIC",
        "connect_timeout": ISTIO_DEFAULT_CONNECT_TIMEOUT,
        "lb_policy": lb,
        "circuit_breakers": {
            "thresholds": [
                {
                    "max_connections": UNLIMITED,
                    "max_pending_requests": UNLIMITED,
                    "max_requests": UNLIMITED,
                    "max_retries": UNLIMITED,
                    "track_remaining": True,
                }
            ]
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {"endpoint": {"address": {"socket_address": {"address": ip, "port_value": int(port)}}}}
                        for ip, port in endpoints
                    ]
                }
            ],
        },
    }
    if "connectionPool" in policy:
        _apply_connection_pool(cluster, policy["connectionPool"], where)
    if "outlierDetection" in policy:
        _apply_outlier_detection(cluster, policy["outlierDetection"], where)
    return cluster


def _rules_by_host(destination_rules: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    rules: dict[str, Mapping[str, Any]] = {}
    for dr in destination_rules:
        _, namespace = _meta(dr)
        spec = dr.get("spec") or {}
        unknown = set(spec) - {"host", "trafficPolicy", "subsets", "exportTo"}
        if unknown:
            raise UnsupportedSpec(f"DestinationRule {_meta(dr)}: {sorted(unknown)} are not translated")
        rules[qualify_host(spec["host"], namespace)] = dr
    return rules


def clusters_for(
    destinations: Sequence[_Destination], destination_rules: Sequence[Mapping[str, Any]], endpoints: Endpoints
) -> list[Resource]:
    rules = _rules_by_host(destination_rules)
    out: dict[str, Resource] = {}
    for dest in destinations:
        if dest.cluster in out:
            continue
        rule = rules.get(dest.host)
        spec = (rule or {}).get("spec") or {}
        where = f"DestinationRule for {dest.host}"
        policy = dict(spec.get("trafficPolicy") or {})
        if dest.subset is not None:
            subsets = {s["name"]: s for s in spec.get("subsets") or []}
            if dest.subset not in subsets:
                raise UnsupportedSpec(f"{where}: no subset {dest.subset!r} (a route sends traffic to it)")
            policy = _merge_policy(policy, subsets[dest.subset].get("trafficPolicy"))
            where = f"{where} subset {dest.subset}"
        out[dest.cluster] = _cluster(dest, policy, endpoints.get((dest.host, dest.subset), ()), where)
    return list(out.values())


# --- endpoints from workloads ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServiceRef:
    """A Kubernetes Service as the mesh sees it: its name, namespace and pod selector."""

    name: str
    namespace: str
    selector: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One running pod (in the twin: one process) with its pod labels and where it listens."""

    namespace: str
    labels: Mapping[str, str]
    address: Endpoint


def endpoints_for(
    services: Sequence[ServiceRef], workloads: Sequence[Workload], destination_rules: Sequence[Mapping[str, Any]]
) -> dict[tuple[str, str | None], list[Endpoint]]:
    """The endpoint map, selected the way Kubernetes and Istio select pods.

    ``(host, None)`` holds every pod the Service selects; ``(host, subset)`` those that also carry the
    subset's labels. A Deployment whose labels drift from the DestinationRule leaves its subset empty,
    so the twin answers 503 for it exactly as the cluster would.
    """

    def matches(labels: Mapping[str, str], selector: Mapping[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in selector.items())

    rules = _rules_by_host(destination_rules)
    out: dict[tuple[str, str | None], list[Endpoint]] = {}
    for svc in services:
        host = qualify_host(svc.name, svc.namespace)
        pods = [
            w for w in workloads if w.namespace == svc.namespace and svc.selector and matches(w.labels, svc.selector)
        ]
        out[(host, None)] = [w.address for w in pods]
        for subset in ((rules.get(host) or {}).get("spec") or {}).get("subsets") or []:
            out[(host, subset["name"])] = [w.address for w in pods if matches(w.labels, subset.get("labels") or {})]
    return out


# --- listeners and files ---------------------------------------------------------------------------


def listener(spec: ListenerSpec, rds_path: str | None, route_config: Resource | None = None) -> Resource:
    """An HTTP listener on 127.0.0.1: routes come from a watched RDS file (or inline, for pure tests)."""
    hcm: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": spec.name,
        "codec_type": "AUTO",
        "strip_any_host_port": True,  # "myapp-service:80" matches the "myapp-service" domain, like a gateway
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
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


def rds_path(config_dir: str | os.PathLike[str], listener_name: str) -> str:
    return str(Path(config_dir) / f"rds-{listener_name}.json")


def translate(
    virtual_services: Sequence[Mapping[str, Any]],
    destination_rules: Sequence[Mapping[str, Any]],
    endpoints: Endpoints,
    listeners: Sequence[ListenerSpec],
    *,
    config_dir: str | os.PathLike[str] | None = None,
) -> EnvoyResources:
    """Envoy listeners, route configurations and clusters for the given Istio specs.

    With ``config_dir`` each listener reads its routes from ``rds-<listener>.json`` there (so weights
    change without touching the listener); without it routes are inlined (static config).
    """
    names = [spec.name for spec in listeners]
    if len(set(names)) != len(names):
        raise UnsupportedSpec(f"listener names must be unique: {names}")
    route_configs: list[Resource] = []
    used: list[_Destination] = []
    out_listeners: list[Resource] = []
    for spec in listeners:
        config, destinations = route_configuration(spec, virtual_services)
        used.extend(destinations)
        route_configs.append({"@type": TYPE_ROUTE, **config})
        path = rds_path(config_dir, spec.name) if config_dir is not None else None
        inline = None if path else {k: v for k, v in config.items()}
        out_listeners.append(listener(spec, path, inline))
    clusters = clusters_for(used, destination_rules, endpoints)
    return EnvoyResources(listeners=out_listeners, route_configs=route_configs, clusters=clusters)


def discovery_response(resources: Sequence[Resource], version: str) -> dict[str, Any]:
    """The file format of Envoy's path config sources (a DiscoveryResponse in JSON)."""
    return {"version_info": version, "resources": list(resources)}


def bootstrap(*, node_id: str, admin_port: int, config_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A bootstrap whose listeners and clusters come from watched files in ``config_dir`` (LDS/CDS).

    Nothing is static: a later file swap changes routes, clusters or listeners with no restart.
    """
    directory = Path(config_dir)
    return {
        "node": {"id": node_id, "cluster": "serverless-mesh-twin"},
        "admin": {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin_port}}},
        # Histograms (upstream_rq_time quantiles) are merged when the admin API is asked, not every 5s,
        # so a p99 read right after a burst of requests already includes it.
        "stats_flush_on_admin": True,
        "dynamic_resources": {
            "lds_config": {"path_config_source": {"path": str(directory / "lds.json")}, "resource_api_version": "V3"},
            "cds_config": {"path_config_source": {"path": str(directory / "cds.json")}, "resource_api_version": "V3"},
        },
    }


def write_atomically(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Write then rename in the same directory: Envoy's watcher sees one complete file, never a partial one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=1)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

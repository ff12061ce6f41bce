"""DestinationRules -> Envoy clusters: one per (host, subset, port), circuit breakers from `connectionPool`,
outlier detection field by field, a subset's policy merged over the rule's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesh.durations import envoy_duration
from mesh.envoy.common import (
    HTTP_OPTIONS_KEY,
    ISTIO_DEFAULT_CONNECT_TIMEOUT,
    ISTIO_DEFAULT_LB,
    TYPE_CLUSTER,
    TYPE_HTTP_OPTIONS,
    UNLIMITED,
    Destination,
    Endpoint,
    Endpoints,
    Resource,
    UnsupportedSpec,
    name_and_namespace,
    qualify_host,
)


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
            HTTP_OPTIONS_KEY: {
                "@type": TYPE_HTTP_OPTIONS,
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
    destination: Destination, policy: Mapping[str, Any], endpoints: Sequence[Endpoint], where: str
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


def rules_by_host(destination_rules: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    rules: dict[str, Mapping[str, Any]] = {}
    for dr in destination_rules:
        _, namespace = name_and_namespace(dr)
        spec = dr.get("spec") or {}
        unknown = set(spec) - {"host", "trafficPolicy", "subsets", "exportTo"}
        if unknown:
            raise UnsupportedSpec(f"DestinationRule {name_and_namespace(dr)}: {sorted(unknown)} are not translated")
        rules[qualify_host(spec["host"], namespace)] = dr
    return rules


def clusters_for(
    destinations: Sequence[Destination], destination_rules: Sequence[Mapping[str, Any]], endpoints: Endpoints
) -> list[Resource]:
    rules = rules_by_host(destination_rules)
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

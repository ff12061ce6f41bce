"""VirtualServices -> Envoy route configurations: matches, weighted destinations (0-weight dropped, as istiod
does), timeouts and istiod's retry policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mesh.common import MESH_GATEWAY
from mesh.durations import envoy_duration
from mesh.envoy.common import (
    ISTIO_DEFAULT_RETRY_ATTEMPTS,
    ISTIO_DEFAULT_RETRY_ON,
    TYPE_PREVIOUS_HOSTS,
    Destination,
    ListenerSpec,
    Resource,
    UnsupportedSpec,
    host_domains,
    name_and_namespace,
    qualify_gateway,
    qualify_host,
)

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
            {"name": "envoy.retry_host_predicates.previous_hosts", "typed_config": {"@type": TYPE_PREVIOUS_HOSTS}}
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


def _destinations(http: Mapping[str, Any], namespace: str, where: str) -> list[tuple[Destination, int]]:
    routes = http.get("route") or []
    if not routes:
        raise UnsupportedSpec(f"{where}: a route needs at least one destination")
    out: list[tuple[Destination, int]] = []
    for entry in routes:
        unknown = set(entry) - {"destination", "weight"}
        if unknown:
            raise UnsupportedSpec(f"{where}.route: fields {sorted(unknown)} are not translated")
        dest = entry["destination"]
        port = (dest.get("port") or {}).get("number", 80)
        weight = entry.get("weight", 100 if len(routes) == 1 else 0)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            raise UnsupportedSpec(f"{where}: weight must be a non-negative integer, got {weight!r}")
        out.append((Destination(qualify_host(dest["host"], namespace), dest.get("subset"), int(port)), weight))
    total = sum(weight for _, weight in out)
    if len(out) > 1 and total != 100:
        raise UnsupportedSpec(f"{where}: destination weights sum to {total}, not 100")
    return out


def _route_action(http: Mapping[str, Any], namespace: str, where: str) -> tuple[dict[str, Any], list[Destination]]:
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


def _virtual_host(vs: Mapping[str, Any], domains: list[str]) -> tuple[dict[str, Any], list[Destination]]:
    name, namespace = name_and_namespace(vs)
    spec = vs.get("spec") or {}
    unknown = set(spec) - {"hosts", "gateways", "http", "exportTo"}
    if unknown:
        raise UnsupportedSpec(f"VirtualService {namespace}/{name}: {sorted(unknown)} are not translated")
    routes: list[dict[str, Any]] = []
    used: list[Destination] = []
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
    _, namespace = name_and_namespace(vs)
    gateways = (vs.get("spec") or {}).get("gateways") or [MESH_GATEWAY]
    return gateway in {qualify_gateway(g, namespace) for g in gateways}


def route_configuration(
    listener: ListenerSpec, virtual_services: Sequence[Mapping[str, Any]]
) -> tuple[Resource, list[Destination]]:
    """The RouteConfiguration a listener serves: one virtual host per VirtualService bound to its gateway."""
    wanted = set(listener.virtual_services)
    vhosts: list[dict[str, Any]] = []
    used: list[Destination] = []
    seen: dict[str, str] = {}
    default = qualify_host(listener.default_host, "default") if listener.default_host else None
    default_found = False
    for vs in virtual_services:
        name, namespace = name_and_namespace(vs)
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

"""Which pods (in the twin: processes) back each Service and subset, selected the way Kubernetes and Istio
select them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mesh.envoy.clusters import rules_by_host
from mesh.envoy.common import Endpoint, qualify_host


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

    rules = rules_by_host(destination_rules)
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

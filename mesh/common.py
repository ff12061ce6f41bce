"""Names, labels and metadata shared by every mesh builder (the bookinfo label contract lives here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesh.durations import parse_duration

NETWORKING_API = "networking.istio.io/v1"
SECURITY_API = "security.istio.io/v1"

#: The two labels every mesh workload carries: Services select on ``app`` only, subsets on ``version``.
APP_LABEL = "app"
VERSION_LABEL = "version"

#: The reserved gateway name that binds a VirtualService to every sidecar (in-mesh callers).
MESH_GATEWAY = "mesh"

CLUSTER_DOMAIN = "svc.cluster.local"

Manifest = dict[str, Any]


def service_fqdn(service: str, namespace: str) -> str:
    """The fully qualified in-cluster host of a Service (the form Istio resolves short names to)."""
    return f"{service}.{namespace}.{CLUSTER_DOMAIN}"


def workload_labels(app: str, version: str) -> dict[str, str]:
    """Labels a Deployment's pod template carries: ``app`` for the Service, ``version`` for the subset."""
    return {APP_LABEL: app, VERSION_LABEL: version}


def app_selector(app: str) -> dict[str, str]:
    """The Service selector: ``app`` only, so every version stays behind one Service."""
    return {APP_LABEL: app}


def deployment_name(app: str, version: str) -> str:
    """Deployments are named ``<app>-<version>`` (bookinfo style)."""
    return f"{app}-{version}"


def spiffe_principal(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    """The mTLS identity AuthorizationPolicies match on (``source.principals``)."""
    return f"{trust_domain}/ns/{namespace}/sa/{service_account}"


def manifest(
    api_version: str,
    kind: str,
    name: str,
    namespace: str,
    spec: Mapping[str, Any],
    labels: Mapping[str, str] | None = None,
) -> Manifest:
    """A complete custom-resource manifest; infra passes ``metadata`` and ``spec`` to CustomResource."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": dict(spec)}


def check_duration(value: str, key: str) -> str:
    """Istio durations are Go-style strings >= 1ms (``"2s"``, ``"500ms"``); fail early, naming the key."""
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None
    if seconds < 0.001:
        raise ValueError(f"{key}: {value!r} must be at least 1ms")
    return value

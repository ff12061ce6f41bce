"""The v1/v2 canary of ``myapp``: DestinationRule subsets, the weighted VirtualService, strict mTLS.

``canary_weight`` is the only input that moves traffic. The seed's steps are one setting each:
0 -> 10 -> 50 -> 100, then ``retire_stable`` (v1 scaled to zero); rollback is the same change backwards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mesh.common import (
    MESH_GATEWAY,
    NETWORKING_API,
    Manifest,
    app_selector,
    check_duration,
    deployment_name,
    manifest,
    service_fqdn,
    workload_labels,
)
from mesh.gateway import IngressSettings
from mesh.policies import RetrySettings, peer_authentication

CANARY_HEADER = "x-canary"
CANARY_HEADER_VALUE = "always"
HEADER_ROUTE_NAME = "canary-header"
SPLIT_ROUTE_NAME = "split"


@dataclass(frozen=True, kw_only=True)
class CanarySettings:
    """Everything the canary's Istio resources and Deployments are built from (one source of truth)."""

    app: str = "myapp"
    namespace: str = "canary"
    service_name: str = "myapp-service"
    service_port: int = 80
    target_port: int = 8080
    stable_version: str = "v1"
    canary_version: str = "v2"
    canary_weight: int = 0
    """Percent of requests for the canary (``canaryWeight``); the stable version gets the rest."""
    retire_stable: bool = False
    """Remove the stable Deployment (``retireStable``); only allowed once the canary takes 100%."""
    retries: RetrySettings = field(default_factory=RetrySettings)
    timeout: str = "10s"
    gateways: tuple[str, ...] = (IngressSettings().ref,)
    """Ingress gateways (``<namespace>/<name>``) the VirtualService is bound to, besides ``mesh``."""
    extra_hosts: tuple[str, ...] = ()
    """External host names the ingress should route to the app, besides the Service's own names."""

    def __post_init__(self) -> None:
        validate_canary(self)

    @property
    def host(self) -> str:
        """The Service's FQDN; destinations and the DestinationRule use it so short names can't drift."""
        return service_fqdn(self.service_name, self.namespace)

    @property
    def versions(self) -> tuple[str, str]:
        return (self.stable_version, self.canary_version)

    @property
    def stable_weight(self) -> int:
        return 100 - self.canary_weight

    def deployment_labels(self, version: str) -> dict[str, str]:
        """Pod labels of the Deployment for ``version`` (subset selectors are built from the same call)."""
        if version not in self.versions:
            raise ValueError(f"version: {version!r} is neither {self.stable_version!r} nor {self.canary_version!r}")
        return workload_labels(self.app, version)

    def service_selector(self) -> dict[str, str]:
        """Selector of the Service in front of both versions."""
        return app_selector(self.app)

    def deployment_name(self, version: str) -> str:
        self.deployment_labels(version)  # validates the version
        return deployment_name(self.app, version)

    def replicas_enabled(self, version: str) -> bool:
        """Whether ``version``'s Deployment should run (the stable one stops after ``retire_stable``)."""
        self.deployment_labels(version)
        return not (version == self.stable_version and self.retire_stable)


def validate_canary(settings: CanarySettings) -> None:
    """Reject combinations Istio would accept but that drop traffic; messages name the stack config keys."""
    weight = settings.canary_weight
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise ValueError(f"canaryWeight: must be an integer between 0 and 100, got {weight!r}")
    if settings.retire_stable and weight != 100:
        raise ValueError(
            f"retireStable: the stable version can only be removed when canaryWeight is 100 (it is {weight}); "
            "set canaryWeight to 100 first, or retireStable to false"
        )
    if settings.stable_version == settings.canary_version:
        raise ValueError("canary versions: stable and canary versions must differ")
    if not 0 < settings.service_port < 65536 or not 0 < settings.target_port < 65536:
        raise ValueError("canary ports: service and target ports must be between 1 and 65535")
    check_duration(settings.timeout, "timeout")
    settings.retries.validate()


def _destination(settings: CanarySettings, subset: str) -> dict[str, Any]:
    return {"host": settings.host, "subset": subset, "port": {"number": settings.service_port}}


def destination_rule(settings: CanarySettings) -> Manifest:
    """Subsets named after the versions, selecting the very labels the Deployments carry; mTLS to both."""
    spec = {
        "host": settings.host,
        "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}},
        "subsets": [
            {"name": version, "labels": {"version": settings.deployment_labels(version)["version"]}}
            for version in settings.versions
        ],
    }
    return manifest(NETWORKING_API, "DestinationRule", f"{settings.app}-dr", settings.namespace, spec)


def virtual_service(settings: CanarySettings) -> Manifest:
    """The header route first (testers reach the canary at any weight), then one named weighted route.

    Both destinations stay in the split route even at weight 0: Istio accepts a 0 weight and drops that
    destination from the Envoy route (as :mod:`mesh.envoy` does), and keeping the shape fixed means every
    step of the rollout is a change of two numbers, never a structural diff of the resource.
    """
    route_common = {"timeout": settings.timeout, "retries": settings.retries.spec()}
    spec = {
        "hosts": [settings.host, *settings.extra_hosts],
        "gateways": [*settings.gateways, MESH_GATEWAY],
        "http": [
            {
                "name": HEADER_ROUTE_NAME,
                "match": [{"headers": {CANARY_HEADER: {"exact": CANARY_HEADER_VALUE}}}],
                "route": [{"destination": _destination(settings, settings.canary_version), "weight": 100}],
                **route_common,
            },
            {
                "name": SPLIT_ROUTE_NAME,
                "route": [
                    {"destination": _destination(settings, settings.stable_version), "weight": settings.stable_weight},
                    {"destination": _destination(settings, settings.canary_version), "weight": settings.canary_weight},
                ],
                **route_common,
            },
        ],
    }
    return manifest(NETWORKING_API, "VirtualService", f"{settings.app}-vs", settings.namespace, spec)


def routed_weight(spec: Mapping[str, Any], subset: str) -> int | None:
    """The weight the split route of a VirtualService built by :func:`virtual_service` gives ``subset`` (a live
    object read back: what the mesh routes now); 0 when the subset is not among its destinations, None when the spec
    has no split route (not this module's VirtualService)."""
    for route in spec.get("http") or []:
        if route.get("name") == SPLIT_ROUTE_NAME:
            weights = [d.get("weight", 0) for d in route.get("route") or []
                       if (d.get("destination") or {}).get("subset") == subset]
            return int(weights[0]) if weights else 0
    return None


def canary_manifests(settings: CanarySettings) -> list[Manifest]:
    """Every Istio resource of the canary namespace, in apply order."""
    return [peer_authentication(settings.namespace), destination_rule(settings), virtual_service(settings)]

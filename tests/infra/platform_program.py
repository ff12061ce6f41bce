"""The platform and the canary as `__main__.py` composes them, without the rest of the stack (fast, and
independent of other components' state). `test_platform_main_smoke` checks `__main__.py` itself."""

from __future__ import annotations

from functools import cache
from typing import Any

import pulumi

from infra import config, wiring
from infra.canary import CanaryApp
from infra.config import stack_config_values
from infra.platform import Platform
from sim.capture import Graph, Resource, capture
from tests.infra.conftest import TEST_SECRETS

K8S_PROVIDER = "pulumi:providers:kubernetes"
RELEASE = "kubernetes:helm.sh/v3:Release"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
NAMESPACE = "kubernetes:core/v1:Namespace"
VIRTUAL_SERVICE = "kubernetes:networking.istio.io/v1:VirtualService"
DESTINATION_RULE = "kubernetes:networking.istio.io/v1:DestinationRule"
GATEWAY = "kubernetes:networking.istio.io/v1:Gateway"
PEER_AUTHENTICATION = "kubernetes:security.istio.io/v1:PeerAuthentication"
ISTIO_TYPES = (VIRTUAL_SERVICE, DESTINATION_RULE, GATEWAY, PEER_AUTHENTICATION)


def mesh_program() -> None:
    cfg, _ = config.load()
    platform = Platform("platform", wiring.platform_args(cfg))
    images = wiring.deployment_images("containers", cfg, platform)
    CanaryApp("canary", wiring.canary_args(cfg, platform.facts.cluster, images), platform.in_cluster())
    pulumi.export("kubeconfigIsSecret", pulumi.Output.from_input(platform.kubeconfig).is_secret())


def capture_mesh(overrides: dict[str, Any] | None = None) -> Graph:
    return capture(mesh_program, stack_config_values("dev", overrides, secrets=TEST_SECRETS), stack="dev")


@cache
def mesh_graph(**overrides: Any) -> Graph:
    """One capture per distinct config for the whole session (graphs are read-only in tests)."""
    return capture_mesh(overrides)


def by_name(graph: Graph, type_token: str, metadata_name: str) -> Resource:
    found = [r for r in graph.of_type(type_token) if (r.inputs.get("metadata") or {}).get("name") == metadata_name]
    assert len(found) == 1, f"expected one {type_token} named {metadata_name}, got {[r.urn for r in found]}"
    return found[0]


def kubernetes_resources(graph: Graph) -> list[Resource]:
    return [r for r in graph.resources if r.custom and r.type.startswith("kubernetes:")]

"""The canary app under the recording mocks: every step of the seed's rollout is one config change."""

from __future__ import annotations

import re
from typing import Any

import pytest

from infra.config import ConfigError
from mesh.canary import CANARY_HEADER, CANARY_HEADER_VALUE, HEADER_ROUTE_NAME, SPLIT_ROUTE_NAME
from mesh.common import MESH_GATEWAY
from services.myapp.settings import Settings as MyappSettings
from sim.capture import Graph, Resource
from tests.infra.platform_program import (
    DEPLOYMENT,
    DESTINATION_RULE,
    GATEWAY,
    ISTIO_TYPES,
    NAMESPACE,
    PEER_AUTHENTICATION,
    SERVICE,
    VIRTUAL_SERVICE,
    by_name,
    capture_mesh,
    mesh_graph,
)
from tests.mesh.schema import validate

HOST = "myapp-service.canary.svc.cluster.local"


@pytest.fixture(scope="module")
def dev() -> Graph:
    """The dev stack: canaryWeight 10."""
    return mesh_graph()


def deployment(graph: Graph, name: str) -> Resource:
    return by_name(graph, DEPLOYMENT, name)


def container(graph: Graph, name: str) -> dict[str, Any]:
    containers = deployment(graph, name).inputs["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def route(graph: Graph, route_name: str) -> dict[str, Any]:
    http = graph.one(VIRTUAL_SERVICE).inputs["spec"]["http"]
    found = [r for r in http if r["name"] == route_name]
    assert len(found) == 1, f"{graph.one(VIRTUAL_SERVICE).urn} has no single route {route_name}"
    return dict(found[0])


def split(graph: Graph) -> dict[str, int]:
    return {d["destination"]["subset"]: d["weight"] for d in route(graph, SPLIT_ROUTE_NAME)["route"]}


# --- The split ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_canary_weight_splits_v1_and_v2_as_100_minus_w_and_w(weight: int) -> None:
    assert split(mesh_graph(canaryWeight=weight)) == {"v1": 100 - weight, "v2": weight}


def test_split_destinations_use_the_service_fqdn_and_port(dev: Graph) -> None:
    for destination in route(dev, SPLIT_ROUTE_NAME)["route"]:
        assert destination["destination"]["host"] == HOST
        assert destination["destination"]["port"] == {"number": 80}


def test_header_route_comes_first_and_sends_x_canary_always_to_v2(dev: Graph) -> None:
    http = dev.one(VIRTUAL_SERVICE).inputs["spec"]["http"]
    assert [r["name"] for r in http] == [HEADER_ROUTE_NAME, SPLIT_ROUTE_NAME]
    assert http[0]["match"] == [{"headers": {CANARY_HEADER: {"exact": CANARY_HEADER_VALUE}}}]
    assert [(d["destination"]["subset"], d["weight"]) for d in http[0]["route"]] == [("v2", 100)]


def test_header_route_reaches_v2_even_at_weight_zero() -> None:
    graph = mesh_graph(canaryWeight=0)
    assert split(graph)["v2"] == 0
    assert route(graph, HEADER_ROUTE_NAME)["route"][0]["destination"]["subset"] == "v2"


def test_virtual_service_is_bound_to_the_ingress_gateway_and_the_mesh(dev: Graph) -> None:
    gateway = dev.one(GATEWAY).inputs["metadata"]
    spec = dev.one(VIRTUAL_SERVICE).inputs["spec"]
    assert spec["gateways"] == [f"{gateway['namespace']}/{gateway['name']}", MESH_GATEWAY]
    assert spec["hosts"][0] == HOST


def test_retries_and_timeout_come_from_config() -> None:
    graph = mesh_graph(meshRetryAttempts=5, meshPerTryTimeout="750ms", meshTimeout="6s")
    for name in (HEADER_ROUTE_NAME, SPLIT_ROUTE_NAME):
        found = route(graph, name)
        assert found["timeout"] == "6s"
        assert found["retries"]["attempts"] == 5
        assert found["retries"]["perTryTimeout"] == "750ms"


# --- Subsets, labels, the Service ---------------------------------------------------------------------------

def test_destination_rule_subsets_select_exactly_the_deployment_labels(dev: Graph) -> None:
    rule = dev.one(DESTINATION_RULE).inputs["spec"]
    assert rule["host"] == HOST
    assert rule["trafficPolicy"]["tls"] == {"mode": "ISTIO_MUTUAL"}
    for subset in rule["subsets"]:
        labels = deployment(dev, f"myapp-{subset['name']}").inputs["spec"]["template"]["metadata"]["labels"]
        assert subset["labels"].items() <= labels.items(), f"subset {subset['name']} selects {subset['labels']}"
        assert labels == {"app": "myapp", "version": subset["name"]}


def test_every_routed_subset_is_defined(dev: Graph) -> None:
    subsets = {s["name"] for s in dev.one(DESTINATION_RULE).inputs["spec"]["subsets"]}
    for http_route in dev.one(VIRTUAL_SERVICE).inputs["spec"]["http"]:
        for destination in http_route["route"]:
            assert destination["destination"]["subset"] in subsets


def test_service_selects_app_only_with_port_http_80_to_8080(dev: Graph) -> None:
    service = by_name(dev, SERVICE, "myapp-service")
    assert service.inputs["metadata"]["namespace"] == "canary"
    assert service.inputs["spec"]["selector"] == {"app": "myapp"}
    assert [(p["name"], p["port"], p["targetPort"]) for p in service.inputs["spec"]["ports"]] == [("http", 80, 8080)]
    for name in ("myapp-v1", "myapp-v2"):
        labels = deployment(dev, name).inputs["spec"]["template"]["metadata"]["labels"]
        assert service.inputs["spec"]["selector"].items() <= labels.items(), f"{name} is not behind the Service"
        assert container(dev, name)["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]


def test_deployment_selectors_match_their_pod_labels(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        spec = deployment(dev, name).inputs["spec"]
        assert spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]


# --- The Deployments ----------------------------------------------------------------------------------------

def test_replicas_come_from_v1_replicas_and_v2_replicas() -> None:
    graph = mesh_graph(v1Replicas=4, v2Replicas=2)
    assert deployment(graph, "myapp-v1").inputs["spec"]["replicas"] == 4
    assert deployment(graph, "myapp-v2").inputs["spec"]["replicas"] == 2


def test_each_version_runs_its_own_pushed_image_by_digest_and_reports_its_tag_as_version(dev: Graph) -> None:
    for name, tag in (("myapp-v1", "1.0.0"), ("myapp-v2", "2.0.0")):
        found = container(dev, name)
        env = {e["name"]: e["value"] for e in found["env"]}
        image = dev.one("docker-build:index:Image", f"containers-{name}")
        assert found["image"] == image.outputs["ref"]
        assert re.fullmatch(rf"123456789012\.dkr\.ecr\.eu-west-1\.amazonaws\.com/serverless-mesh-dev/myapp:"
                            rf"{re.escape(tag)}-[0-9a-f]{{12}}@sha256:[0-9a-f]{{64}}", found["image"]), found["image"]
        assert env["VERSION"] == tag
        assert env["HOST"] == "0.0.0.0" and env["PORT"] == "8080"


def test_container_env_names_are_settings_the_app_reads(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        names = {e["name"] for e in container(dev, name)["env"]}
        assert names <= set(MyappSettings.model_fields), f"{name} sets {names - set(MyappSettings.model_fields)}"


def test_containers_run_under_the_restricted_security_context(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        pod = deployment(dev, name).inputs["spec"]["template"]["spec"]
        ctx = container(dev, name)["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False


def test_probes_check_health_for_liveness_and_ready_for_readiness(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        found = container(dev, name)
        assert found["livenessProbe"]["httpGet"]["path"] == "/health"
        assert found["startupProbe"]["httpGet"]["path"] == "/health"
        assert found["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert found["readinessProbe"]["httpGet"]["port"] == "http"


def test_containers_have_requests_and_limits(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        resources = container(dev, name)["resources"]
        assert set(resources["requests"]) == {"cpu", "memory"}
        assert set(resources["limits"]) == {"cpu", "memory"}


def test_rolling_updates_never_drop_below_the_replica_count(dev: Graph) -> None:
    for name in ("myapp-v1", "myapp-v2"):
        assert deployment(dev, name).inputs["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# --- Namespace and mTLS -------------------------------------------------------------------------------------

def test_namespace_enables_sidecar_injection_after_istiod(dev: Graph) -> None:
    namespace = by_name(dev, NAMESPACE, "canary")
    istiod = next(r for r in dev.of_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "istiod")
    assert namespace.inputs["metadata"]["labels"] == {"istio-injection": "enabled"}
    assert istiod.urn in namespace.dependencies, f"{namespace.urn}: pods created before istiod get no sidecar"


def test_peer_authentication_is_strict_for_the_namespace(dev: Graph) -> None:
    peer = dev.one(PEER_AUTHENTICATION)
    assert peer.inputs["metadata"] == {"name": "default", "namespace": "canary"}
    assert peer.inputs["spec"] == {"mtls": {"mode": "STRICT"}}


def test_every_istio_custom_resource_validates_against_the_vendored_crd_schemas(dev: Graph) -> None:
    for resource in (r for r in dev.resources if r.type in ISTIO_TYPES):
        validate({k: resource.inputs[k] for k in ("apiVersion", "kind", "metadata", "spec")})


def test_virtual_service_waits_for_subsets_and_deployments(dev: Graph) -> None:
    vs = dev.one(VIRTUAL_SERVICE)
    assert dev.one(DESTINATION_RULE).urn in vs.dependencies
    for name in ("myapp-v1", "myapp-v2"):
        assert deployment(dev, name).urn in vs.dependencies, f"{vs.urn} could route to {name} before it is ready"


# --- Retiring v1 and bad config -----------------------------------------------------------------------------

def test_retire_stable_at_100_removes_the_v1_deployment_only() -> None:
    graph = mesh_graph(canaryWeight=100, retireStable=True, confirmStableDrained=True)
    names = {d.inputs["metadata"]["name"] for d in graph.of_type(DEPLOYMENT)}
    assert names == {"myapp-v2"}
    assert split(graph) == {"v1": 0, "v2": 100}


def test_v1_replicas_zero_at_100_scales_v1_to_zero_and_keeps_it() -> None:
    graph = mesh_graph(canaryWeight=100, v1Replicas=0)
    assert deployment(graph, "myapp-v1").inputs["spec"]["replicas"] == 0


def test_rollback_from_retired_is_one_change_back() -> None:
    graph = mesh_graph(canaryWeight=100, retireStable=False)
    assert deployment(graph, "myapp-v1").inputs["spec"]["replicas"] == 3


def test_retire_stable_while_v1_takes_traffic_fails_naming_both_keys() -> None:
    with pytest.raises(ConfigError) as err:
        capture_mesh({"canaryWeight": 10, "retireStable": True})
    assert "serverless-mesh:retireStable" in str(err.value)
    assert "serverless-mesh:canaryWeight" in str(err.value)


def test_retire_stable_without_confirmation_fails_at_preview_naming_both_keys() -> None:
    # Weight 100 and retirement in one update would delete v1 while Envoy may still route to it.
    with pytest.raises(ConfigError) as err:
        capture_mesh({"canaryWeight": 100, "retireStable": True})
    assert "serverless-mesh:retireStable" in str(err.value)
    assert "serverless-mesh:confirmStableDrained" in str(err.value)


def test_a_stale_confirmation_is_refused_after_a_rollback() -> None:
    with pytest.raises(ConfigError, match=r"serverless-mesh:confirmStableDrained .* serverless-mesh:retireStable"):
        capture_mesh({"canaryWeight": 100, "retireStable": False, "confirmStableDrained": True})


@pytest.mark.parametrize("bad", [-1, 101, 150, "abc"])
def test_canary_weight_outside_0_to_100_fails_naming_the_key_and_value(bad: object) -> None:
    with pytest.raises(ConfigError) as err:
        capture_mesh({"canaryWeight": bad})
    assert str(err.value) == f'serverless-mesh:canaryWeight must be an integer from 0 to 100, got "{bad}"'


def test_v1_replicas_zero_below_100_fails_naming_the_keys() -> None:
    with pytest.raises(ConfigError, match=r"serverless-mesh:v1Replicas .* serverless-mesh:canaryWeight"):
        capture_mesh({"canaryWeight": 50, "v1Replicas": 0})

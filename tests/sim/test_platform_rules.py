"""What EKS, Kubernetes and Istio would refuse, caught when the mock registers the resource.

Each test takes the inputs the program really registers and breaks one thing, so a rule that stopped matching
the program's shape would show up as a passing "valid" case failing, not as silence.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sim.capture import Graph, Resource
from sim.rules import CloudRejection, check
from tests.infra.platform_program import (
    DEPLOYMENT,
    DESTINATION_RULE,
    ISTIO_TYPES,
    RELEASE,
    SERVICE,
    VIRTUAL_SERVICE,
    kubernetes_resources,
    mesh_graph,
)


@pytest.fixture(scope="module")
def graph() -> Graph:
    return mesh_graph()


def broken(resource: Resource) -> dict[str, Any]:
    return copy.deepcopy(resource.inputs)


def first(graph: Graph, type_token: str) -> Resource:
    return graph.of_type(type_token)[0]


def test_every_registered_resource_passes_the_rules_as_recorded(graph: Graph) -> None:
    for resource in graph.resources:
        if resource.custom:
            check(resource.type, resource.name, resource.inputs)


def test_istio_resources_are_checked_by_the_schema_rules(graph: Graph) -> None:
    assert {r.type for r in kubernetes_resources(graph)} >= set(ISTIO_TYPES)


def test_deployment_whose_selector_misses_the_pod_labels_is_rejected(graph: Graph) -> None:
    resource = first(graph, DEPLOYMENT)
    inputs = broken(resource)
    inputs["spec"]["selector"]["matchLabels"]["version"] = "v9"
    with pytest.raises(CloudRejection, match=rf"{DEPLOYMENT} '{resource.name}': selector .* does not match"):
        check(DEPLOYMENT, resource.name, inputs)


def test_probe_on_an_undeclared_port_name_is_rejected(graph: Graph) -> None:
    resource = first(graph, DEPLOYMENT)
    inputs = broken(resource)
    inputs["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = "web"
    with pytest.raises(CloudRejection, match="readinessProbe uses port 'web'"):
        check(DEPLOYMENT, resource.name, inputs)


def test_request_above_limit_is_rejected(graph: Graph) -> None:
    resource = first(graph, DEPLOYMENT)
    inputs = broken(resource)
    inputs["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "1Gi"
    with pytest.raises(CloudRejection, match="requests memory 1Gi above its limit"):
        check(DEPLOYMENT, resource.name, inputs)


def test_container_port_name_longer_than_15_characters_is_rejected(graph: Graph) -> None:
    resource = first(graph, DEPLOYMENT)
    inputs = broken(resource)
    inputs["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "http-application"
    with pytest.raises(CloudRejection, match="is not an IANA service name"):
        check(DEPLOYMENT, resource.name, inputs)


@pytest.mark.parametrize("port_name", ["web", "main"])
def test_service_port_without_a_protocol_name_is_rejected_for_istio(graph: Graph, port_name: str) -> None:
    resource = graph.one(SERVICE)
    inputs = broken(resource)
    inputs["spec"]["ports"][0]["name"] = port_name
    inputs["spec"]["ports"][0].pop("appProtocol", None)
    with pytest.raises(CloudRejection, match=rf"{SERVICE} '{resource.name}': port 80 name '{port_name}'"):
        check(SERVICE, resource.name, inputs)


def test_service_with_two_unnamed_ports_is_rejected(graph: Graph) -> None:
    resource = graph.of_type(SERVICE)[0]
    inputs = broken(resource)
    inputs["spec"]["ports"] = [{"port": 80, "appProtocol": "http"}, {"port": 81, "appProtocol": "http"}]
    with pytest.raises(CloudRejection, match="each needs a unique name"):
        check(SERVICE, resource.name, inputs)


@pytest.mark.parametrize("version", ["", "^1.28", "1.28", "latest"])
def test_helm_release_without_an_exact_version_is_rejected(graph: Graph, version: str) -> None:
    resource = first(graph, RELEASE)
    inputs = broken(resource)
    inputs["version"] = version
    with pytest.raises(CloudRejection, match="is not an exact chart version"):
        check(RELEASE, resource.name, inputs)


def test_virtual_service_with_an_unknown_field_is_rejected_by_the_crd_schema(graph: Graph) -> None:
    resource = graph.one(VIRTUAL_SERVICE)
    inputs = broken(resource)
    inputs["spec"]["http"][1]["route"][0]["wieght"] = 10
    with pytest.raises(CloudRejection, match=r"spec.http.1.route.0: .*'wieght'.* \(Istio CRD schema\)"):
        check(VIRTUAL_SERVICE, resource.name, inputs)


def test_virtual_service_with_a_sub_millisecond_timeout_is_rejected(graph: Graph) -> None:
    resource = graph.one(VIRTUAL_SERVICE)
    inputs = broken(resource)
    inputs["spec"]["http"][1]["timeout"] = "0s"
    with pytest.raises(CloudRejection, match=r"spec\.http\.1\.timeout"):
        check(VIRTUAL_SERVICE, resource.name, inputs)


def test_destination_rule_with_a_renamed_outlier_field_is_rejected(graph: Graph) -> None:
    resource = graph.one(DESTINATION_RULE)
    inputs = broken(resource)
    inputs["spec"]["trafficPolicy"]["outlierDetection"] = {"consecutiveErrors": 5}
    with pytest.raises(CloudRejection, match="consecutiveErrors"):
        check(DESTINATION_RULE, resource.name, inputs)


def test_destination_rule_with_a_deprecated_field_is_rejected_naming_its_path(graph: Graph) -> None:
    resource = graph.one(DESTINATION_RULE)
    inputs = broken(resource)
    inputs["spec"]["subsets"][1]["trafficPolicy"] = {"loadBalancer": {"simple": "ROUND_ROBIN",
                                                                      "warmupDurationSecs": "10s"}}
    with pytest.raises(CloudRejection,
                       match=r"spec.subsets\[1\].trafficPolicy.loadBalancer.warmupDurationSecs is deprecated"):
        check(DESTINATION_RULE, resource.name, inputs)


def test_node_group_with_graviton_instances_and_an_x86_ami_is_rejected(graph: Graph) -> None:
    resource = graph.one("aws:eks/nodeGroup:NodeGroup")
    inputs = broken(resource)
    inputs["amiType"] = "AL2023_x86_64_STANDARD"
    with pytest.raises(CloudRejection, match=r"t4g\.large \(arm64\) cannot boot amiType AL2023_x86_64_STANDARD"):
        check(resource.type, resource.name, inputs)


def test_node_group_with_desired_size_above_max_is_rejected(graph: Graph) -> None:
    resource = graph.one("aws:eks/nodeGroup:NodeGroup")
    inputs = broken(resource)
    inputs["scalingConfig"]["desiredSize"] = 9
    with pytest.raises(CloudRejection, match="minSize <= desiredSize <= maxSize"):
        check(resource.type, resource.name, inputs)


def test_access_entry_for_an_sts_session_arn_is_rejected(graph: Graph) -> None:
    resource = graph.one("aws:eks/accessEntry:AccessEntry")
    inputs = broken(resource)
    inputs["principalArn"] = "arn:aws:sts::123456789012:assumed-role/Deployer/session"
    with pytest.raises(CloudRejection, match="must be an IAM role or user ARN"):
        check(resource.type, resource.name, inputs)


def test_cluster_with_one_subnet_is_rejected(graph: Graph) -> None:
    resource = graph.one("aws:eks/cluster:Cluster")
    inputs = broken(resource)
    inputs["vpcConfig"]["subnetIds"] = inputs["vpcConfig"]["subnetIds"][:1]
    with pytest.raises(CloudRejection, match="at least two availability zones"):
        check(resource.type, resource.name, inputs)


def test_ecr_repository_with_uppercase_name_is_rejected(graph: Graph) -> None:
    resource = graph.of_type("aws:ecr/repository:Repository")[0]
    inputs = broken(resource)
    inputs["name"] = "Serverless/MyApp"
    with pytest.raises(CloudRejection, match="breaks ECR's naming rules"):
        check(resource.type, resource.name, inputs)

